"""URL table of the example project; see views.py for what each route tests."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.hello),
    path("feedback", views.feedback),
    path("meta", views.meta),
    path("upload", views.upload),
    path("stream", views.stream),
    path("unicode", views.unicode),
    path("boom", views.boom),
    path("sleep", views.sleep),
    path("segv", views.segv),
]
