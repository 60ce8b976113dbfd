"""media/: where images come from and where results go. What a SOURCE names (sources), a video source
opened (video_source) and read ahead (source_reader), the detection of one (video) or many (many_sources), video
writing (video_writer), the detection run over a source (run), the classification run over images (classify_run),
which outputs a run writes, one field per output flag (outputs: Outputs builds the sinks), and the result
sinks every caller writes through, the CLI and the Ray driver alike (sinks: records JSON, darknet
result.json, YOLO labels, annotated images and video, darknet's -ext_output lines, the --show
window; live.LiveView is a sink too), with darknet's JSON format (darknet_json); darknet's -save_labels files
(darknet_labels), a training set of a video's frames (frames_dataset), a COCO dataset
(coco_dataset), object crops (crops) and the redaction
stage (redact); the tracking stage with its MOT, counts.json and events.jsonl outputs (tracking_sinks), folders read
as a video's frames (sequence), darknet_py.track (track) and darknet_py.video_frames (video_frames). Live sources
(cameras, streams): network streams through PyAV (stream_capture), the reconnecting reader (live_reader), every
frame or only the newest (frame_buffer), and each source's figures for /health and /metrics (source_status).

May import: evaluate, export, backends, pipeline, model, format, core (in practice: pipeline and below).
"""
