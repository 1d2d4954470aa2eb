from django.urls import path

from analysis import api, views

urlpatterns = [
    path("analysis/studies/<slug:slug>/leaderboard", views.leaderboard_page, name="leaderboard"),
    path(
        "analysis/studies/<slug:slug>/leaderboard/rebuild",
        views.rebuild_report,
        name="leaderboard-rebuild",
    ),
    path(
        "api/studies/<slug:slug>/leaderboard", api.LeaderboardApi.as_view(), name="api-leaderboard"
    ),
    path("api/v1/studies/<slug:slug>/gate", api.ResearcherGateApi.as_view(), name="api-v1-gate"),
]
