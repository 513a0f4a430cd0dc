"""One registry mechanism for everything found by name: models, tasks, serving inputs.

A Registry maps names to entries, refuses a name registered twice (a programming
error), and turns an unknown name into the one-line UserError a user sees, naming the
flag and listing what is known:

  python -c "
  from estimator_pipeline.core import registry
  r = registry.Registry('model', '--model_name')
  r.register('cifarnet', object())
  r.get('resnet')"     # UserError: --model_name=resnet is not a known model; known: ...
"""

from estimator_pipeline.core.errors import UserError


class Registry:
  """name -> entry, with the flag that names entries in user-facing errors."""

  def __init__(self, kind, flag=None, loader=None):
    """kind: what an entry is ('model'); flag: the flag that picks one ('--model_name');
    loader: called once before the first lookup, to import the modules that register
    (so importing the registry itself stays cheap)."""
    self.kind = kind
    self.flag = flag or '--' + kind
    self._entries = {}
    self._loader = loader
    self._loaded = loader is None

  def register(self, name, entry):
    if name in self._entries:
      raise ValueError('%s %r is registered twice' % (self.kind, name))
    self._entries[name] = entry
    return entry

  def _load(self):
    if not self._loaded:
      self._loaded = True
      self._loader()

  def names(self):
    self._load()
    return sorted(self._entries)

  def items(self):
    self._load()
    return sorted(self._entries.items())

  def __contains__(self, name):
    self._load()
    return name in self._entries

  def get(self, name, context=''):
    """The entry registered as name; a UserError naming the flag and the known names.

    context: words that say for what the name was looked up, e.g. 'for
    --model_name=seqnn'.
    """
    self._load()
    if name not in self._entries:
      raise UserError('%s=%s is not a known %s%s; known: %s.' % (
          self.flag, name, self.kind, ' ' + context if context else '',
          ', '.join(sorted(self._entries)) or 'none'))
    return self._entries[name]
