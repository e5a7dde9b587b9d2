"""The backend side: what runs next to a server and keeps it known to the LB.

Registration and lease keeping (``reporter``), load measurement
(``load_source``), and the demo ``Compute`` service with its server.
"""
