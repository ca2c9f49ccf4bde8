/**
 * Finding things in a parsed YAML document: the node at a settings path (through aliases and `<<` merge
 * keys, so an error in inherited content points at the line where the value is written), and the alias
 * that made conversion fail (an alias bomb, an alias without its anchor), so those get a line too.
 */
import { type Alias, type Document, isAlias, isCollection, isMap, isPair, isScalar, isSeq, type Node, visit } from 'yaml';

/**
 * The bound handed to the yaml package's `maxAliasCount`: it refuses an alias once the uses of its anchor
 * times the weight of the anchor's content pass it (see failingAlias). Its default, 100, would refuse a
 * config whose 100 sources merge one common base (each scalar weighs 1); 10 000 still stops an alias bomb
 * after about that many values, long before the expansion costs memory or time.
 */
export const MAX_ALIAS_COUNT = 10_000;

function isMergeKey(key: unknown): boolean {
  return isScalar(key) && (key.value === '<<' || (typeof key.value === 'symbol' && key.value.description === '<<'));
}

function resolved(doc: Document, node: unknown): unknown {
  // An alias stands for its anchor's node; a chain of them ends at a node (or nowhere, if unresolved).
  for (let hops = 0; isAlias(node) && hops < 100; hops++) node = node.resolve(doc);
  return node;
}

/** The pair of `key` in a map: its own items first, then what `<<` merges in, in order (the first merge wins). */
function pairIn(doc: Document, map: unknown, key: PropertyKey, depth = 0): { key: Node; value: unknown } | undefined {
  const node = resolved(doc, map);
  if (!isMap(node) || depth > 20) return undefined;
  const own = node.items.find((pair) => !isMergeKey(pair.key) && (pair.key as { value?: unknown })?.value === key);
  if (own) return own as { key: Node; value: unknown };
  for (const pair of node.items) {
    if (!isMergeKey(pair.key)) continue;
    const merged = resolved(doc, pair.value);
    for (const source of isSeq(merged) ? merged.items : [merged]) {
      const found = pairIn(doc, source, key, depth + 1);
      if (found) return found;
    }
  }
  return undefined;
}

/** The node of the value at `path`, or undefined when the path is not written in the document. */
export function nodeAt(doc: Document, path: readonly PropertyKey[]): Node | undefined {
  let node: unknown = doc.contents;
  for (const key of path) {
    node = resolved(doc, node);
    if (isMap(node)) node = pairIn(doc, node, key)?.value;
    else if (isSeq(node) && typeof key === 'number') node = node.items[key];
    else return undefined;
  }
  return node as Node | undefined;
}

/** The YAML key node for `key` inside the map at `path` (to point at an unknown key itself). */
export function keyAt(doc: Document, path: readonly PropertyKey[], key: string): Node | undefined {
  return pairIn(doc, nodeAt(doc, path), key)?.key;
}

/** The nearest node that is written, walking up from `path`: where a missing value's parent is. */
export function nearestNode(doc: Document, path: readonly PropertyKey[]): Node | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = nodeAt(doc, path.slice(0, n));
    if (node?.range) return node;
  }
  return undefined;
}

/** Aliases in document order: the order the yaml package resolves them when it converts the document. */
function aliases(doc: Document): Alias[] {
  const found: Alias[] = [];
  visit(doc, { Alias: (_key, alias) => void found.push(alias) });
  return found;
}

/**
 * The alias at which the yaml package's conversion gave up, and why. It refuses an alias when the uses of
 * its anchor (the anchor itself included), times the weight of the anchor's content, exceed `maxAliasCount`;
 * a value weighs 1 and an alias inside weighs what its own anchor has counted so far: the "billion laughs"
 * shape, where each level repeats the one before, grows that product geometrically. This replays that
 * count (node_modules/yaml/dist/nodes/Alias.js) to name the alias, since the error it throws carries no
 * position. Without an anchor of that name before it, an alias is unresolved.
 */
export function failingAlias(doc: Document, maxAliasCount = MAX_ALIAS_COUNT): { alias: Alias; reason: 'unresolved' | 'bomb' } | undefined {
  const uses = new Map<unknown, { count: number; aliasCount: number }>();
  const weight = (node: unknown): number => {
    if (isAlias(node)) {
      const data = uses.get(node.resolve(doc));
      return data ? data.count * data.aliasCount : 0;
    }
    if (isCollection(node)) return Math.max(0, ...node.items.map(weight));
    if (isPair(node)) return Math.max(weight(node.key), weight(node.value));
    return 1;
  };
  for (const alias of aliases(doc)) {
    const target = alias.resolve(doc);
    if (!target) return { alias, reason: 'unresolved' };
    // The anchor itself counts once (the package's bookkeeping starts there).
    const data = uses.get(target) ?? { count: 1, aliasCount: 0 };
    uses.set(target, data);
    data.count += 1;
    if (data.aliasCount === 0) data.aliasCount = weight(target);
    if (data.count * data.aliasCount > maxAliasCount) return { alias, reason: 'bomb' };
  }
  return undefined;
}
