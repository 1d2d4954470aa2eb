from django.urls import path

from vote_baseline import views

urlpatterns = [
    path("ping", views.ping),
    path("vote", views.vote),
]
