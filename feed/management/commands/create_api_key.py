from django.core.management.base import BaseCommand, CommandError

from feed.models import DEFAULT_SCOPES, SCOPES
from feed.services import create_key
from tokfeed.errors import ServiceError


class Command(BaseCommand):
    help = ("Create a partner API key. The key is printed once, as the last line; only its hash is stored. "
            "Keys created under one name are one partner's: each can use the sessions the others started.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="the partner the key is for")
        parser.add_argument(
            "--scopes", default=",".join(DEFAULT_SCOPES),
            help=f"comma-separated, of: {'; '.join(f'{s} ({what})' for s, what in SCOPES.items())}. "
                 f"Default: {','.join(DEFAULT_SCOPES)}")

    def handle(self, *args, name, scopes, **options):
        try:
            api_key, key = create_key(name, scopes.split(","))
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"API key for {api_key.name!r} with scopes {','.join(api_key.scopes)} "
                          "(send it as 'Authorization: Api-Key <key>'):")
        self.stdout.write(key)
