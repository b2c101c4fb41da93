/**
 * A generated client is TypeScript a new user compiles: the calls the walkthrough makes at runtime
 * are also written as a user would write them, and compiled with the generated code under this
 * repository's own compiler options (tsconfig.json: strict, noUncheckedIndexedAccess, NodeNext).
 * A body the tool typed wrongly from the spec (a union where one schema serves both media types,
 * say) is a compile error here even when the bytes on the wire happen to be right.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import ts from 'typescript'
import { ROOT } from './generate.js'

function compilerOptions(): ts.CompilerOptions {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(ROOT, 'tsconfig.json'),
    { noEmit: true },
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'))
      }
    }
  )
  if (!config) throw new Error('tsconfig.json could not be read')
  // hey-api's runtime names the DOM's BodyInit, which @types/node 20 does not declare: the
  // browser's libs come along, as in any project that compiles fetch code (DOM, DOM.Iterable).
  return { ...config.options, lib: [...(config.options.lib ?? []), 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'] }
}

/** Writes `usage` beside the generated code and compiles both; returns the compiler's errors. */
export async function typeErrors(dir: string, usage: string): Promise<string[]> {
  const file = join(dir, 'usage.ts')
  await writeFile(file, usage)
  const program = ts.createProgram({ rootNames: [file], options: compilerOptions() })
  return ts.getPreEmitDiagnostics(program).map((diagnostic) =>
    ts.formatDiagnostic(diagnostic, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => dir,
      getNewLine: () => '\n'
    })
  )
}
