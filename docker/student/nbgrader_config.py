# nbgrader in a student's server (the course image installs this as /etc/jupyter/nbgrader_config.py).
# Fetch and submit go through the hub-authenticated exchange service, which files work under the
# hub's name for the server's token, never a name this server sends.
c = get_config()  # noqa: F821 (traitlets provides get_config to config files)
c.CourseDirectory.course_id = "introdl"
c.Exchange.assignment_dir = "."  # students' home
from introdl.hub.exchange_client import configure  # noqa: E402 (the hub-authenticated exchange)

configure(c)
