/** The part of mqtt-packet's numbers.js (CommonJS, untyped) that agent/util/mqtt-packet-lengths.ts replaces. */
declare module 'mqtt-packet/numbers.js' {
  const numbers: { genBufVariableByteInt: (num: number) => Buffer };
  export default numbers;
}
