"""Root conftest: test settings from the environment before Django loads."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("DEBUG", "1")
