import assert from 'node:assert/strict'
import { launcherPath, projectRoot } from '../../node/paths.js'

describe('paths: the project root from a module of the sources or of the bundle', () => {
  it('is one up from node/, sim/ and dist/, two up from dist/chunks/', () => {
    for (const url of ['file:///p/shoal/node/x.ts', 'file:///p/shoal/sim/x.ts', 'file:///p/shoal/dist/cli.js', 'file:///p/shoal/dist/chunks/local-cluster-AB12.js']) {
      assert.equal(projectRoot(url), '/p/shoal', url)
    }
    assert.equal(launcherPath('file:///p/shoal/dist/chunks/demo-X.js'), '/p/shoal/bin/shoal.js')
    // Only dist/chunks is a chunk directory: a source directory named chunks is not.
    assert.equal(projectRoot('file:///p/chunks/node/x.ts'), '/p/chunks')
  })
})
