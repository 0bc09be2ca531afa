/**
 * Windows boxes get no automation over SSH (cmd, PowerShell and Windows services differ too much to
 * drive blind): provisioning writes join-mesh.ps1 with the exact commands, for a person to run there.
 *
 * Exports: WindowsJoin, joinScriptPs1.
 */
export interface WindowsJoin { networkId: string, name: string, poolId: string, rootPublicKey: string, poolName: string, key: string, expiresAt: string }

/** PowerShell single-quoted string: ' doubled */
function psQuote (s: string): string { return `'${s.replace(/'/g, "''")}'` }

export function joinScriptPs1 (j: WindowsJoin): string {
  return [
    '# join-mesh.ps1, written by `mesh remote provision`: run it in PowerShell on this box.',
    `# It holds a single-use join key, valid until ${j.expiresAt}; delete the file afterwards.`,
    '$ErrorActionPreference = \'Stop\'',
    'if (-not (Get-Command node -ErrorAction SilentlyContinue)) { throw \'Install Node.js 20.19 or newer first: https://nodejs.org\' }',
    'if (-not (Get-Command mesh -ErrorAction SilentlyContinue)) { throw \'Install mesh on this box first (README, Quick start), then run this again\' }',
    `$meshHome = if ($env:MESH_HOME) { $env:MESH_HOME } else { Join-Path $HOME '.meshnet' }`,
    `if (-not (Test-Path (Join-Path $meshHome 'keys\\device.key'))) { mesh init --network-id ${psQuote(j.networkId)} --name ${psQuote(j.name)} }`,
    `mesh pool-join --pool-id ${psQuote(j.poolId)} --pool-root-pubkey=${psQuote(j.rootPublicKey)} --name ${psQuote(j.poolName)} --token=${psQuote(j.key)} --start --wait 60`,
    `mesh pool-list`,
    ''
  ].join('\r\n')
}
