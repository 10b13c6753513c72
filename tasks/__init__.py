"""Stage logic of the hybridrec pipeline: plain typed functions (Prefect wrappers live in ``flows/``)."""
