from django.core.management.base import BaseCommand
from rest_framework_api_key.models import APIKey


class Command(BaseCommand):
    help = "Create a partner API key. The key is printed once, as the last line; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("name", help="who the key is for")

    def handle(self, *args, name, **options):
        _, key = APIKey.objects.create_key(name=name)
        self.stdout.write(f"API key for {name!r} (send it as 'Authorization: Api-Key <key>'):")
        self.stdout.write(key)
