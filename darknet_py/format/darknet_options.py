"""The options darknet reads in each kind of layer section (its parser, src/parser.c, at the reference commit):
a key outside these is one darknet ignores, saying `Unused field` (format.cfg warns for it alike).

Written by `python -m benchmarks.oracle.darknet_option_names --write darknet_py/format/darknet_options.py`.
"""

# the keys darknet reads in every layer's section, whatever its kind
EVERY_LAYER = frozenset(['burnin_update', 'clip', 'dont_update', 'dontload', 'dontloadscales', 'learning_rate', 'onlyforward', 'stopbackward', 'train_only_bn'])

# section name (as written between brackets, each of darknet's aliases) -> the keys its parse function reads
LAYER_OPTIONS: dict[str, frozenset[str]] = {
    'Gaussian_yolo': frozenset(['anchors', 'beta_nms', 'classes', 'cls_normalizer', 'counters_per_class', 'delta_normalizer', 'ignore_thresh', 'iou_loss', 'iou_normalizer', 'iou_thresh', 'iou_thresh_kind', 'jitter', 'label_smooth_eps', 'map', 'mask', 'max', 'max_delta', 'nms_kind', 'num', 'obj_normalizer', 'objectness_smooth', 'random', 'resize', 'scale_x_y', 'truth_thresh', 'uc_normalizer', 'yolo_point']),
    'activation': frozenset(['activation']),
    'avg': frozenset([]),
    'avgpool': frozenset([]),
    'batchnorm': frozenset([]),
    'conn': frozenset(['activation', 'batch_normalize', 'output']),
    'connected': frozenset(['activation', 'batch_normalize', 'output']),
    'contrastive': frozenset(['classes', 'cls_normalizer', 'contrastive_neg_max', 'max_delta', 'temperature', 'yolo_layer']),
    'conv': frozenset(['activation', 'angle', 'antialiasing', 'assisted_excitation', 'batch_normalize', 'bin_output', 'binary', 'cbn', 'coordconv', 'dilation', 'dot', 'filters', 'flipped', 'grad_centr', 'groups', 'pad', 'padding', 'reverse', 'rotate', 'share_index', 'size', 'stream', 'stretch', 'stretch_sway', 'stride', 'stride_x', 'stride_y', 'sway', 'wait_stream', 'xnor']),
    'conv_lstm': frozenset(['activation', 'batch_normalize', 'bottleneck', 'dilation', 'groups', 'lstm_activation', 'output', 'pad', 'padding', 'peephole', 'shortcut', 'size', 'state_constrain', 'stride', 'time_normalizer', 'xnor']),
    'convolutional': frozenset(['activation', 'angle', 'antialiasing', 'assisted_excitation', 'batch_normalize', 'bin_output', 'binary', 'cbn', 'coordconv', 'dilation', 'dot', 'filters', 'flipped', 'grad_centr', 'groups', 'pad', 'padding', 'reverse', 'rotate', 'share_index', 'size', 'stream', 'stretch', 'stretch_sway', 'stride', 'stride_x', 'stride_y', 'sway', 'wait_stream', 'xnor']),
    'cost': frozenset(['ratio', 'scale', 'type']),
    'crnn': frozenset(['activation', 'batch_normalize', 'dilation', 'groups', 'hidden', 'output', 'pad', 'padding', 'shortcut', 'size', 'stride', 'xnor']),
    'crop': frozenset(['angle', 'crop_height', 'crop_width', 'exposure', 'flip', 'noadjust', 'saturation', 'shift']),
    'detection': frozenset(['class_scale', 'classes', 'coord_scale', 'coords', 'forced', 'jitter', 'max', 'noobject_scale', 'num', 'object_scale', 'random', 'reorg', 'rescore', 'resize', 'side', 'softmax', 'sqrt']),
    'dropout': frozenset(['dropblock', 'dropblock_size_abs', 'dropblock_size_rel', 'probability']),
    'empty': frozenset([]),
    'gru': frozenset(['batch_normalize', 'output']),
    'history': frozenset(['history_size']),
    'implicit': frozenset(['atoms', 'filters', 'mean', 'std']),
    'local': frozenset(['activation', 'filters', 'pad', 'size', 'stride']),
    'local_avg': frozenset(['padding', 'size', 'stride', 'stride_x', 'stride_y']),
    'local_avgpool': frozenset(['padding', 'size', 'stride', 'stride_x', 'stride_y']),
    'lrn': frozenset(['alpha', 'beta', 'kappa', 'size']),
    'lstm': frozenset(['batch_normalize', 'output']),
    'max': frozenset(['antialiasing', 'maxpool_depth', 'maxpool_zero_nonmax', 'out_channels', 'padding', 'size', 'stride', 'stride_x', 'stride_y']),
    'maxpool': frozenset(['antialiasing', 'maxpool_depth', 'maxpool_zero_nonmax', 'out_channels', 'padding', 'size', 'stride', 'stride_x', 'stride_y']),
    'normalization': frozenset(['alpha', 'beta', 'kappa', 'size']),
    'region': frozenset(['absolute', 'anchors', 'bias_match', 'class_scale', 'classes', 'classfix', 'coord_scale', 'coords', 'focal_loss', 'jitter', 'log', 'map', 'mask_scale', 'max', 'noobject_scale', 'num', 'object_scale', 'random', 'rescore', 'resize', 'softmax', 'sqrt', 'thresh', 'tree']),
    'reorg': frozenset(['reverse', 'stride']),
    'reorg3d': frozenset(['reverse', 'stride']),
    'rnn': frozenset(['activation', 'batch_normalize', 'hidden', 'logistic', 'output', 'shortcut']),
    'route': frozenset(['group_id', 'groups', 'layers', 'stream', 'wait_stream']),
    'sam': frozenset(['activation', 'from']),
    'scale_channels': frozenset(['activation', 'from', 'scale_wh']),
    'shortcut': frozenset(['activation', 'from', 'weights_normalization', 'weights_type']),
    'silence': frozenset([]),
    'soft': frozenset(['groups', 'noloss', 'spatial', 'temperature', 'tree']),
    'softmax': frozenset(['groups', 'noloss', 'spatial', 'temperature', 'tree']),
    'upsample': frozenset(['scale', 'stride']),
    'yolo': frozenset(['anchors', 'beta_nms', 'classes', 'cls_normalizer', 'counters_per_class', 'delta_normalizer', 'dets_for_show', 'dets_for_track', 'embedding_layer', 'focal_loss', 'ignore_thresh', 'iou_loss', 'iou_normalizer', 'iou_thresh', 'iou_thresh_kind', 'jitter', 'label_smooth_eps', 'map', 'mask', 'max', 'max_delta', 'new_coords', 'nms_kind', 'num', 'obj_normalizer', 'objectness_smooth', 'random', 'resize', 'scale_x_y', 'show_details', 'sim_thresh', 'track_ciou_norm', 'track_history_size', 'truth_thresh']),
}
