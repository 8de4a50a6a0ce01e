from django.core.management.base import BaseCommand, CommandError
from rest_framework_api_key.models import APIKey


class Command(BaseCommand):
    help = ("Create a partner API key. The key is printed once, as the last line; only its hash is stored. "
            "Keys created under one name are one partner's: each can use the sessions the others started.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="the partner the key is for")

    def handle(self, *args, name, **options):
        name = name.strip()
        if not name or len(name) > 50:
            raise CommandError("the partner's name must be 1 to 50 characters")
        _, key = APIKey.objects.create_key(name=name)
        self.stdout.write(f"API key for {name!r} (send it as 'Authorization: Api-Key <key>'):")
        self.stdout.write(key)
