import { fromBinary, ScalarType, toBinary, type DescField, type DescFile, type DescMessage, type DescMethod, type DescService } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import type { ServiceDefinition } from '@grpc/grpc-js';

/**
 * A grpc-js service definition built from a protobuf-es descriptor. Requests are handed to the
 * handler as raw bytes and decoded there, so a malformed message is answered INVALID_ARGUMENT
 * by the one error mapping instead of grpc-js's generic INTERNAL for deserializer failures.
 */
export function serviceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, ServiceDefinition[string]> = {};
  for (const method of service.methods) {
    if (method.methodKind !== 'unary') throw new Error(`${service.typeName}.${method.name}: only unary methods are served`);
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (message: Parameters<typeof toBinary>[1]) => Buffer.from(toBinary(method.input, message)),
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: (message: Parameters<typeof toBinary>[1]) => Buffer.from(toBinary(method.output, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
      originalName: method.localName,
    };
  }
  return definition;
}

/** The file descriptors of these services and everything they import, as serialized FileDescriptorProtos. */
export function fileDescriptorProtos(services: readonly DescService[]): Buffer[] {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    file.dependencies.forEach(visit);
  };
  services.forEach((s) => visit(s.file));
  return [...files.values()].map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
}

export const fullMethodName = (method: DescMethod) => `${method.parent.typeName}.${method.name}`;

function scalarWireType(scalar: ScalarType): WireType {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return WireType.LengthDelimited;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WireType.Bit32;
    default:
      return WireType.Varint;
  }
}

/** The wire types a field may arrive with (repeated scalars and enums also packed). */
function wireTypesOf(field: DescField): WireType[] {
  switch (field.fieldKind) {
    case 'message':
    case 'map':
      return [WireType.LengthDelimited];
    case 'enum':
      return [WireType.Varint];
    case 'scalar':
      return [scalarWireType(field.scalar)];
    case 'list':
      if (field.listKind === 'message') return [WireType.LengthDelimited];
      return [field.listKind === 'enum' ? WireType.Varint : scalarWireType(field.scalar), WireType.LengthDelimited];
  }
}

/**
 * The first known field of `message` (top level) sent with a wire type its type cannot have, or
 * undefined. protobuf-es reads a known field by its declared type whatever the wire type says, so
 * `0b 0c` (field 1 as a group) would decode as account_id 12 instead of failing.
 */
export function misencodedField(message: DescMessage, bytes: Uint8Array): DescField | undefined {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    const field = message.fields.find((f) => f.number === fieldNo);
    if (field && !wireTypesOf(field).includes(wireType)) return field;
    reader.skip(wireType, fieldNo);
  }
  return undefined;
}
