# The PRISM maintenance bundle on the official Airflow image.
#
#   docker build -t prism-maintenance-airflow:3.3.2 .                       # Airflow + the bundle
#   docker build --target stand-ins -t prism-maintenance-stand-ins:3.3.2 .  # + localflare and the S3 stand-in
#
# docker-compose.yaml builds both. The bundle (dags/, plugins/, include/) is copied in, so the image
# runs on its own (Kubernetes, ECS, ...); docker-compose mounts the working copy over it.
FROM apache/airflow:3.3.2 AS airflow

# Exactly the versions the bundle is tested with: requirements.txt, constrained by requirements.lock
# (which pins apache-airflow itself, so pip never moves Airflow under the image). requirements.txt
# installs the in-repo Cloudflare provider (hooks, operators, triggers, the `cloudflare` connection
# type) from ./providers/cloudflare; pip takes no path as a constraint, so that line leaves the lock.
COPY --chown=airflow:0 requirements.txt requirements.lock /opt/airflow/prism-requirements/
COPY --chown=airflow:0 providers/cloudflare/ /opt/airflow/prism-requirements/providers/cloudflare/
WORKDIR /opt/airflow/prism-requirements
RUN grep -v '^-e ' requirements.lock > constraints.txt \
 && pip install --no-cache-dir -r requirements.txt -c constraints.txt
WORKDIR /opt/airflow

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
