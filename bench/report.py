"""results.json -> RESULTS.md (placeholder while the suites are written)."""
import json
def markdown(results):
  return '```\n' + json.dumps(results, indent=1) + '\n```\n'
