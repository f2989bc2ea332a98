"""The PRISM dashboard inside the Airflow UI: what the DAGs recorded, read from Airflow's metadata DB."""
