# Schemathesis hooks for scripts/schemathesis (SCHEMATHESIS_HOOKS): POST /api/v1/audit/simulate
# takes its candidate workflow as `application/toml`, which schemathesis has no serializer for;
# the body is text, sent as text/plain's serializer sends it, so the route is fuzzed too.
import schemathesis

schemathesis.serializer.alias("application/toml", "text/plain")
