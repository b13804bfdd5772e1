import $protobuf from "protobufjs/minimal.js";

$OUTPUT;

export { $root as default };
