# syntax=docker/dockerfile:1
# Multi-stage image: build the virtualenv in one stage, run as a non-root user in the other.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/aqi
COPY pyproject.toml README.md ./
COPY aqi_service ./aqi_service
RUN /opt/aqi/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/aqi/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 aqi
COPY --from=build /opt/aqi /opt/aqi
WORKDIR /app
COPY --chown=aqi:aqi config ./config
COPY --chown=aqi:aqi sql ./sql
ENV PATH=/opt/aqi/bin:$PATH \
    AQI_CONFIG_DIR=/app/config \
    AQI_SQL_DIR=/app/sql \
    AQI_DATABASE_DATA_DIR=/app/var \
    PYTHONUNBUFFERED=1
RUN mkdir -p /app/var && chown aqi:aqi /app/var
USER aqi
EXPOSE 8080
VOLUME ["/app/var"]
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"
CMD ["aqi-service", "serve", "--host", "0.0.0.0", "--port", "8080"]
