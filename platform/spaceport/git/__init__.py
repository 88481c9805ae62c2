"""Git: bare repositories on disk, served over smart HTTP by `git http-backend`."""
