"""The benchmark lab: the seed's scale tests made repeatable, with a report and plots.

Only the ``bench`` command imports this package; the LB, backend and client never
do, so matplotlib and the lab's bookkeeping stay off the serving path. The pure
parts (``metrics``, ``churn``, ``results``, ``seed_figures``, ``report``,
``plots``) need no sockets and are unit-tested on their own.
"""
