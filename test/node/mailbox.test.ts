import assert from 'node:assert/strict'
import { Mailbox } from '../../node/mailbox.js'

describe('mailbox', () => {
  it('makes the sender wait while it is full (back-pressure), in FIFO order', async () => {
    const m = new Mailbox<number>(2)
    await m.put(1)
    await m.put(2)
    let third = false
    const p = m.put(3).then(() => { third = true })
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(third, false, 'the third put waits')
    assert.equal(await m.take(), 1)
    await p
    assert.equal(third, true)
    assert.deepEqual([await m.take(), await m.take()], [2, 3])
  })

  it('wakes a waiting receiver, and on close drains then ends', async () => {
    const m = new Mailbox<string>(1)
    const t = m.take()
    await m.put('a')
    assert.equal(await t, 'a')
    await m.put('b')
    const blocked = m.put('c')
    m.close()
    await assert.rejects(blocked, { name: 'MailboxClosedError' })
    assert.equal(await m.take(), 'b')
    assert.equal(await m.take(), undefined)
    await assert.rejects(m.put('d'), { name: 'MailboxClosedError' })
  })

  it('rejects a capacity that is not a positive integer', () => {
    assert.throws(() => new Mailbox(0), /mailbox capacity must be a positive integer, got 0/)
  })
})
