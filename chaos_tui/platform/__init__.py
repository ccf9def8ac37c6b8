"""The reference platform's names and client calls (streams, subjects, org, policy, SQL),
which the sandbox and the Docker stack both serve. Scenarios and targets import these, never
the sandbox's own modules."""
