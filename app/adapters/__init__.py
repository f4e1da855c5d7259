"""Bindings of the domain core to infrastructure (the domain never imports this package).

`redis` holds every Redis binding (cache L2, change propagation, rate-limit counters,
revocation fast path, login failures); `http` holds the Starlette-bound pieces that the HTTP
layer (`app.api`) and the composition root share. The relational store is `app.store`.
"""
