# The PRISM maintenance bundle on the official Airflow image.
#
#   docker build -t prism-maintenance-airflow:3.3.2 .                       # Airflow + the bundle
#   docker build --target stand-ins -t prism-maintenance-stand-ins:3.3.2 .  # + localflare and the S3 stand-in
#
# docker-compose.yaml builds both. The bundle (dags/, plugins/, include/) is copied in, so the image
# runs on its own (Kubernetes, ECS, ...); docker-compose mounts the working copy over it.
FROM apache/airflow:3.3.2 AS airflow

# Exactly the versions the bundle is tested with: requirements.txt, constrained by requirements.lock
# (which pins apache-airflow itself, so pip never moves Airflow under the image).
COPY --chown=airflow:0 requirements.txt requirements.lock /opt/airflow/prism-requirements/
RUN pip install --no-cache-dir \
      -r /opt/airflow/prism-requirements/requirements.txt \
      -c /opt/airflow/prism-requirements/requirements.lock

# The `cloudflare` connection type (form fields, `airflow connections test`): a provider distribution
# in this repo, no dependencies; the hook it names lives in plugins/.
COPY --chown=airflow:0 providers/cloudflare-connection/ /opt/airflow/prism-requirements/cloudflare-connection/
RUN pip install --no-cache-dir --no-deps /opt/airflow/prism-requirements/cloudflare-connection

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/


# localflare (the local Cloudflare stand-in) and moto's S3 server, for `docker compose --profile local`.
FROM airflow AS stand-ins

COPY --chown=airflow:0 localflare/requirements.txt /opt/airflow/prism-requirements/localflare.txt
RUN pip install --no-cache-dir \
      -r /opt/airflow/prism-requirements/localflare.txt "moto[server,s3]" \
      -c /opt/airflow/prism-requirements/requirements.lock
COPY --chown=airflow:0 localflare/ /opt/airflow/localflare/
WORKDIR /opt/airflow
