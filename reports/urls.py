from django.urls import path

from reports import api, views

urlpatterns = [
    path("reports/studies/<slug:slug>/", views.report_page, name="report"),
    path("reports/studies/<slug:slug>/report.pdf", views.report_pdf, name="report-pdf"),
    path("reports/studies/<slug:slug>/report.zip", views.report_zip, name="report-zip"),
    path("api/studies/<slug:slug>/report", api.ReportApi.as_view(), name="api-report"),
    path(
        "api/v1/studies/<slug:slug>/report",
        api.ResearcherReportApi.as_view(),
        name="api-v1-study-report",
    ),
    path(
        "api/v1/studies/<slug:slug>/report.zip",
        api.ResearcherReportZipApi.as_view(),
        name="api-v1-study-report-zip",
    ),
    path(
        "api/v1/studies/<slug:slug>/votes.csv",
        api.ResearcherVotesApi.as_view(),
        name="api-v1-study-votes",
    ),
]
