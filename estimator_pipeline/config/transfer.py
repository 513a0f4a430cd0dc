"""baskerville's `transfer` section (hound_transfer.py) read and checked, as data.

The section says what a fine-tuning run trains: `mode` full (everything), linear (the
head only) or adapter (the head's last layer and an `adapter`'s weights), with
hound_transfer's keys and defaults:

  "transfer": {"mode": "adapter", "adapter": "lora", "adapter_latent": 8,
               "lora_alpha": 16, "conv_select": 4, "conv_latent": 4, "locon_alpha": 1}

houlsby and houlsby_se add layers; a finished run's params.json describes them in its
model section as baskerville's modify_json does (`adapter`, `adapter_latent`, and for
houlsby_se `se_rank` and `conv_select`), which builds them without a transfer section.
The graph is models/seqnn/adapters.py's (config/ lies below models/):

  python -c "
  from estimator_pipeline.config import transfer
  print(transfer.settings({'transfer': {'mode': 'adapter', 'adapter': 'ia3'}}, 'p.json'))"
"""

from estimator_pipeline.core.errors import UserError

MODES = ('full', 'linear', 'adapter')
ADAPTERS = ('lora', 'lora_full', 'ia3', 'locon', 'lora_conv', 'houlsby', 'houlsby_se')
# hound_transfer's defaults.
DEFAULTS = {'mode': 'full', 'adapter': None, 'adapter_latent': 8, 'conv_select': 4,
            'conv_latent': 4, 'lora_alpha': 16, 'locon_alpha': 1}
KEYS = tuple(DEFAULTS)
# Adapters that add layers (kept at export); the others fold into the base weights.
LAYER_ADAPTERS = ('houlsby', 'houlsby_se')
# The model-section keys of an architecture with houlsby layers (modify_json's).
MODEL_ADAPTER_KEYS = ('adapter', 'adapter_latent', 'se_rank', 'conv_select')


def _positive(where, key, value):
  if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
    raise UserError('%s: %s=%r must be a positive number.' % (where, key, value))


def check(section, where):
  """Refuses what hound_transfer would refuse or silently ignore."""
  if not isinstance(section, dict):
    raise UserError('%s: must be an object with keys %s.' % (where, ', '.join(KEYS)))
  unknown = sorted(k for k in section if k not in KEYS)
  if unknown:
    raise UserError('%s: unknown key%s %s; accepted: %s.' % (
        where, 's' if len(unknown) > 1 else '', ', '.join(unknown), ', '.join(KEYS)))
  mode = section.get('mode', 'full')
  if mode not in MODES:
    raise UserError('%s: mode=%r is not known; known modes: %s.'
                    % (where, mode, ', '.join(MODES)))
  adapter = section.get('adapter')
  if adapter is not None and adapter not in ADAPTERS:
    raise UserError('%s: adapter=%r is not known; known adapters: %s.'
                    % (where, adapter, ', '.join(ADAPTERS)))
  if adapter is not None and mode != 'adapter':
    raise UserError('%s: adapter=%r needs "mode": "adapter" (mode is %r, which trains '
                    '%s).' % (where, adapter, mode, 'everything' if mode == 'full'
                              else 'the head only'))
  if mode == 'adapter' and adapter is None:
    raise UserError('%s: "mode": "adapter" needs an adapter; known adapters: %s.'
                    % (where, ', '.join(ADAPTERS)))
  for key in ('adapter_latent', 'conv_latent', 'lora_alpha', 'locon_alpha'):
    if key in section:
      _positive(where, key, section[key])
  for key in ('adapter_latent', 'conv_select', 'conv_latent'):
    if key in section and not isinstance(section[key], int):
      raise UserError('%s: %s=%r must be an integer.' % (where, key, section[key]))
  if 'conv_select' in section and section['conv_select'] < 1:
    raise UserError('%s: conv_select=%r must be at least 1.'
                    % (where, section['conv_select']))


def check_model(model, where):
  """The model section's adapter keys (a houlsby run's params.json)."""
  adapter = model.get('adapter')
  if adapter is None:
    stray = [k for k in MODEL_ADAPTER_KEYS if k in model and k != 'adapter']
    if stray:
      raise UserError('%s: %s without adapter: add "adapter": "houlsby" or '
                      '"houlsby_se", or remove %s.' % (where, stray[0], stray[0]))
    return
  if adapter not in LAYER_ADAPTERS:
    raise UserError('%s: adapter=%r: the model section builds only %s (the others '
                    'fold into the weights); known: %s.' % (
                        where, adapter, ' and '.join(LAYER_ADAPTERS),
                        ', '.join(LAYER_ADAPTERS)))
  for key in ('adapter_latent', 'se_rank', 'conv_select'):
    if key in model and (not isinstance(model[key], int) or model[key] < 1):
      raise UserError('%s: %s=%r must be a positive integer.' % (where, key, model[key]))


def settings(params, path='<params>'):
  """The transfer a params file asks for, hound_transfer's defaults filled in, as
  hound_transfer applies it: a dict (mode, adapter, rank, alpha, conv_select,
  conv_rank, conv_alpha, houlsby_latent, se_rank, layers_from_model), or None when
  the file trains as it is (no transfer section, no model-section adapter)."""
  section = params.get('transfer')
  model = params.get('model', {})
  if section is None and not model.get('adapter'):
    return None
  given = dict(DEFAULTS, **(section or {}))
  mode, adapter = given['mode'], given['adapter']
  found = {'mode': mode, 'adapter': adapter, 'rank': given['adapter_latent'],
           'alpha': given['lora_alpha'], 'conv_select': given['conv_select'],
           'conv_rank': given['conv_latent'], 'conv_alpha': given['locon_alpha'],
           'houlsby_latent': given['adapter_latent'], 'se_rank': given['conv_latent'],
           'layers_from_model': False}
  if adapter in ('lora_conv', 'locon'):
    # hound_transfer's attention LoRA of these two is add_lora's default.
    found.update(rank=8, alpha=16)
  if adapter == 'houlsby_se':
    # hound_transfer calls add_houlsby_se without houlsby_latent: its default, 8.
    found['houlsby_latent'] = 8
  if model.get('adapter'):
    built = model['adapter']
    if adapter is not None and adapter != built:
      raise UserError('%s: the model section builds adapter %r but the transfer '
                      'section asks for %r: use one adapter.' % (path, built, adapter))
    found.update(adapter=built, layers_from_model=True,
                 houlsby_latent=model.get('adapter_latent', 8),
                 se_rank=model.get('se_rank', 16),
                 conv_select=model.get('conv_select', found['conv_select']))
    if section is None:
      found['mode'] = 'full'
  return found


def describe_model(params, found):
  """params with the model section describing the houlsby layers of `found`, as
  baskerville's modify_json writes them (a copy; params without them unchanged)."""
  if not found or found['adapter'] not in LAYER_ADAPTERS:
    return params
  model = dict(params['model'], adapter=found['adapter'],
               adapter_latent=found['houlsby_latent'])
  if found['adapter'] == 'houlsby_se':
    model.update(se_rank=found['se_rank'], conv_select=found['conv_select'])
  return dict(params, model=model)
