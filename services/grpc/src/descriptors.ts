import { fromBinary, toBinary, type DescFile, type DescMethod, type DescService } from '@bufbuild/protobuf';
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
