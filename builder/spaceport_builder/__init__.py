"""Spaceport's builder: the Celery worker that turns a Space repo into an image."""
