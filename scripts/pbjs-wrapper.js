import $protobuf from 'protobufjs/minimal.js';

// 64-bit fields as JavaScript numbers, not Long objects: txids and indexes are safe integers, and every
// boundary validates that. This must run before any message type (and its defaults) is defined.
$protobuf.util.Long = null;
$protobuf.configure();

$OUTPUT;

export { $root as default };
