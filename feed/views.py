from django.core.paginator import Paginator
from django.shortcuts import render

from catalog.models import Video


def catalog_page(request):
    """A plain listing of the imported catalog (the feed replaces it)."""
    videos = Video.objects.select_related("creator", "music").order_by("-play_count", "id")
    page = Paginator(videos, 50).get_page(request.GET.get("page"))
    return render(request, "feed/catalog.html", {"page": page, "total": page.paginator.count, "embedded": videos.filter(embedding__isnull=False).count()})
