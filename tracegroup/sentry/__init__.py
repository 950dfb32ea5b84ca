"""Sentry payloads from OTLP spans: transactions by application boundary, error events, envelopes.

Contract: :func:`tracegroup.sentry.emit.emit` turns a :class:`~tracegroup.model.SpanTable` into an
:class:`~tracegroup.sentry.emit.EmitResult` — transaction events built from the ``service`` grouping (one
per application boundary, cut into continuation transactions above Sentry's 1 MiB item limit), error
events from exception span events, the envelope headers of each, and an explicit record of everything not
written and why. Every input span is accounted for exactly once: in a written transaction, or in a
not-written record. Same input and options, byte-identical output.

Modules: :mod:`~tracegroup.sentry.convert` (one OTLP span -> one Sentry span, ``exporter`` and ``sentry``
styles, Relay's tag rules), :mod:`~tracegroup.sentry.rename` (span renames),
:mod:`~tracegroup.sentry.events` (transaction and error payloads, splitting, time rules, event ids),
:mod:`~tracegroup.sentry.envelope` (``sentry_sdk.envelope`` and the files on disk),
:mod:`~tracegroup.sentry.plan` (which transactions, routes, sampling and fates: pure data),
:mod:`~tracegroup.sentry.build` (one conversion pass, payloads and records from a plan),
:mod:`~tracegroup.sentry.emit` (the library call: plan, then build), :mod:`tracegroup.cli.sentry`
(``tracegroup emit``, ``send``).
Importing this package is cheap: ``sentry_sdk`` and ``yaml`` are imported only where used. The library
call is ``from tracegroup.sentry.emit import emit``.
"""
