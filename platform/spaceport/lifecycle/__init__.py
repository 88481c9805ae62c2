"""The lifecycle of a Space: deploy, swap, sleep and wake, standbys, crashes, retirement.

It keeps the engine (spaceport.engine) and the proxy (spaceport.proxy) where the database
says each Space should be; services call it, and it never calls back up.
"""
