from django.urls import path

from studies import api, researcher_api, views

urlpatterns = [
    # The rater's busiest calls first: routes are tried in order.
    path("api/r/<slug:slug>/votes", api.VoteApi.as_view(), name="api-rater-votes"),
    path("api/r/<slug:slug>/session", api.SessionApi.as_view(), name="api-rater-session"),
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("r/<slug:slug>/", views.rater_entry, name="rater-entry"),
    path("r/<slug:slug>/consent", views.rater_consent, name="rater-consent"),
    path("r/<slug:slug>/instructions", views.rater_instructions, name="rater-instructions"),
    path("r/<slug:slug>/compare", views.rater_compare, name="rater-compare"),
    path("r/<slug:slug>/about-you", views.rater_questionnaire, name="rater-questionnaire"),
    path("r/<slug:slug>/done", views.rater_done, name="rater-done"),
    path("r/<slug:slug>/stop", views.rater_stop, name="rater-stop"),
    path("api/r/<slug:slug>/flags", api.FlagApi.as_view(), name="api-rater-flags"),
    path(
        "api/r/<slug:slug>/load-failures",
        api.LoadFailureApi.as_view(),
        name="api-rater-load-failures",
    ),
    path(
        "api/v1/studies/<slug:slug>",
        researcher_api.StudyStateApi.as_view(),
        name="api-v1-study",
    ),
    path(
        "api/v1/studies/<slug:slug>/duplicate",
        researcher_api.StudyDuplicateApi.as_view(),
        name="api-v1-study-duplicate",
    ),
    *(
        path(
            f"api/v1/studies/<slug:slug>/{action}",
            researcher_api.StudyLifecycleApi.as_view(),
            {"action": action},
            name=f"api-v1-study-{action}",
        )
        for action in researcher_api.LIFECYCLE
    ),
]
