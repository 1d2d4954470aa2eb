FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# The report's PDF (WeasyPrint) lays text out with Pango; DejaVu is the report's font.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
COPY . .
# "[gpu]" for the gpu-worker image: torch and transformers for the feature extractors.
ARG EXTRAS=""
RUN pip install --no-cache-dir ".${EXTRAS}" \
 && SECRET_KEY=collectstatic-only DEBUG=0 python manage.py collectstatic --noinput \
 && useradd --uid 1000 --create-home verdict \
 && mkdir -p /data/media /data/imports && chown -R verdict /data
USER verdict
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
