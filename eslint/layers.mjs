/**
 * The layer rule: each folder of src/ imports only from its own layer and the layers before it, so that where a
 * module lives says what it may use. Workflow code (bundled for Temporal's deterministic sandbox) is held closer:
 * it imports values only from domain/ and workflows/, and activities for their types.
 */
import { dirname, relative, resolve, sep } from 'node:path';

/** In order: a layer imports from itself and the ones above it in this list. */
export const LAYERS = [
  ['domain'],
  ['runtimes'],
  ['process', 'store', 'logs', 'worktrees', 'auth'],
  ['activities'],
  ['workflows'],
  ['services'],
  ['temporal'],
  ['api'],
  ['cli'],
];

const layerOf = (folder) => LAYERS.findIndex((l) => l.includes(folder));

/** `src/<folder>/…` of an absolute path, or null outside src/. */
function folderOf(srcRoot, file) {
  const rel = relative(srcRoot, file);
  if (rel.startsWith('..') || !rel.includes(sep)) return null;
  return rel.split(sep)[0];
}

function describeLayer(i) {
  return LAYERS[i].join('/');
}

export function createLayersPlugin(srcRoot) {
  const rule = {
    meta: {
      type: 'problem',
      docs: {
        description:
          'imports follow the layers: domain -> runtimes -> process/store/logs/worktrees/auth -> activities -> workflows -> services -> temporal -> api -> cli',
      },
      schema: [],
    },
    create(context) {
      const file = context.filename;
      const from = folderOf(srcRoot, file);
      if (from === null) return {};
      const fromLayer = layerOf(from);
      function check(node, spec, typeOnly) {
        if (typeof spec !== 'string') return;
        if (fromLayer === -1) {
          context.report({ node, message: `src/${from}/ is in no layer: add it to LAYERS in eslint/layers.mjs` });
          return;
        }
        if (from === 'domain' && spec.startsWith('node:') && !typeOnly) {
          context.report({
            node,
            message: `domain/ is pure (schemas and constants): it cannot import ${spec}; move the code that needs it to a lower layer`,
          });
          return;
        }
        if (!spec.startsWith('.')) return;
        const to = folderOf(srcRoot, resolve(dirname(file), spec));
        if (to === null || to === from) return;
        const toLayer = layerOf(to);
        if (toLayer === -1) return; // reported where that folder's own modules are linted
        if (from === 'workflows' && to !== 'domain' && !(to === 'activities' && typeOnly)) {
          context.report({
            node,
            message: `workflow code imports values only from domain/ and workflows/ (and activities for their types), not from src/${to}/: it runs in Temporal's deterministic sandbox`,
          });
          return;
        }
        if (toLayer > fromLayer) {
          context.report({
            node,
            message: `src/${from}/ (layer ${describeLayer(fromLayer)}) cannot import from src/${to}/ (layer ${describeLayer(toLayer)}), which comes after it: move the shared code down, or pass it in as a dependency`,
          });
        }
      }
      const isTypeOnly = (node) =>
        node.importKind === 'type' || (node.specifiers?.length > 0 && node.specifiers.every((s) => s.importKind === 'type'));
      return {
        ImportDeclaration: (node) => check(node.source, node.source.value, isTypeOnly(node)),
        ExportNamedDeclaration: (node) => node.source && check(node.source, node.source.value, node.exportKind === 'type'),
        ExportAllDeclaration: (node) => check(node.source, node.source.value, node.exportKind === 'type'),
        ImportExpression: (node) => node.source.type === 'Literal' && check(node.source, node.source.value, false),
        CallExpression: (node) => {
          const c = node.callee;
          const isRequire = c.type === 'Identifier' && c.name === 'require';
          const isResolve = c.type === 'MemberExpression' && c.object.type === 'Identifier' && c.object.name === 'require';
          if ((isRequire || isResolve) && node.arguments[0]?.type === 'Literal') check(node.arguments[0], node.arguments[0].value, false);
        },
        TSImportType: (node) => {
          const arg = node.argument?.type === 'TSLiteralType' ? node.argument.literal : node.argument;
          if (arg?.type === 'Literal') check(arg, arg.value, true);
        },
      };
    },
  };
  return { rules: { imports: rule } };
}
