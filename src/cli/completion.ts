// Shell completion scripts written from a commander program: its
// subcommands and each one's flags, so the script never falls behind the
// commands. Small on purpose: words, not values (no upgrade names, which
// would need a call to the cluster on every Tab).
import type { Command } from 'commander';

export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

function flagsOf(cmd: Command): string[] {
  return cmd.options.flatMap((o) => [o.short, o.long].filter((f): f is string => Boolean(f)));
}

/** The script for one shell; `program.name()` is the command it completes. */
export function completionScript(program: Command, shell: Shell): string {
  const name = program.name();
  const fn = `_${name.replace(/[^A-Za-z0-9]/g, '_')}`;
  const global = [...flagsOf(program), '--help'];
  const subs = program.commands.map((c) => ({
    name: c.name(),
    words: [...flagsOf(c), ...global].join(' '),
  }));
  const top = [...subs.map((s) => s.name), ...global].join(' ');
  if (shell === 'bash') {
    const cases = subs.map((s) => `    ${s.name}) words="${s.words}" ;;`).join('\n');
    return `# bash completion for ${name}; load with: source <(${name} completion bash)
${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} sub="" words i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case \${COMP_WORDS[i]} in -*) ;; *) sub=\${COMP_WORDS[i]}; break ;; esac
  done
  case $sub in
${cases}
    *) words="${top}" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F ${fn} ${name}
`;
  }
  const cases = subs.map((s) => `    ${s.name}) compadd -- ${s.words} ;;`).join('\n');
  return `#compdef ${name}
# zsh completion for ${name}; load with: source <(${name} completion zsh)
${fn}() {
  local sub="" i
  for ((i = 2; i < CURRENT; i++)); do
    [[ $words[i] != -* ]] && { sub=$words[i]; break; }
  done
  case $sub in
${cases}
    *) compadd -- ${top} ;;
  esac
}
compdef ${fn} ${name}
`;
}
