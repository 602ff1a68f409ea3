# One image for every netcron service; the command picks the service:
#   netcron api | netcron worker | netcron executor | netcron migrate
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/netcron
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/netcron/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/netcron/bin:$PATH PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin netcron
COPY --from=build /opt/netcron /opt/netcron
USER netcron
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status == 200 else 1)"]
CMD ["netcron", "api"]
