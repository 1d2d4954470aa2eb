from django.urls import path

from generation import api

urlpatterns = [
    path("api/v1/studies", api.StudiesApi.as_view(), name="api-v1-studies"),
    path(
        "api/v1/studies/<slug:slug>/definition",
        api.DefinitionApi.as_view(),
        name="api-v1-study-definition",
    ),
    path("api/v1/studies/<slug:slug>/media", api.MediaApi.as_view(), name="api-v1-study-media"),
    path(
        "api/v1/studies/<slug:slug>/generate",
        api.GenerateApi.as_view(),
        name="api-v1-study-generate",
    ),
]
