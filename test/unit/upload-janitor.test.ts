// The upload janitor's decision, pure: which upload folders go, which stay,
// at operator start and while it runs.
import {
  ABANDONED_AFTER_MS,
  type FolderVerdict,
  isUploadFolderName,
  type JudgeInput,
  judgeUploadFolders,
  type UpgradeUse,
  uploadFolderOf,
} from '../../src/api/upload-janitor.js';
import { isTerminal, PHASES, type Phase } from '../../src/core/phases.js';

const WORK = '/var/lib/pairshift/work';
const NOW = Date.parse('2026-11-29T16:00:00Z');
const fresh = NOW - 60_000;

const use = (name: string, phase: Phase | undefined, folder: string): UpgradeUse => ({
  name,
  phase,
  paths: [`${WORK}/${folder}/package.tar.gz`, `${WORK}/${folder}/package.sig`],
});

function judge(over: Partial<JudgeInput>): Map<string, FolderVerdict> {
  const verdicts = judgeUploadFolders({
    workDir: WORK,
    folders: [],
    upgrades: [],
    pass: 'running',
    claimed: new Map(),
    nowMs: NOW,
    ...over,
  });
  return new Map(verdicts.map((v) => [v.folder, v]));
}

describe('upload folder names and paths', () => {
  it('knows upload folders by name: upload_ + 6 (mkdtemp), and the older upload-', () => {
    for (const n of ['upload_Ab3xYz', 'upload_000000', 'upload-Ab3xYz'])
      expect(isUploadFolderName(n)).toBe(true);
    for (const n of [
      'upload_abc',
      'upload_abcdefg',
      'upload_ab/cd',
      'upg-20261129-0a1b2c3d',
      'stage-app-2.0.0-abcdef',
      'upload_ab.def',
      'xupload_abcdef',
      '',
    ])
      expect(isUploadFolderName(n)).toBe(false);
  });

  it('finds the upload folder of a path only directly inside the work folder', () => {
    expect(uploadFolderOf(WORK, `${WORK}/upload_abcdef/package.tar.gz`)).toBe('upload_abcdef');
    expect(uploadFolderOf(WORK, `${WORK}/upload_abcdef/stage-app/payload/app.jar`)).toBe(
      'upload_abcdef',
    );
    expect(uploadFolderOf(`${WORK}/`, `${WORK}/upload_abcdef/x`)).toBe('upload_abcdef');
    expect(uploadFolderOf(WORK, `${WORK}/other/upload_abcdef/x`)).toBeUndefined();
    expect(uploadFolderOf(WORK, `${WORK}/../upload_abcdef/x`)).toBeUndefined();
    expect(uploadFolderOf(WORK, `/srv/pkgs/upload_abcdef/x`)).toBeUndefined();
    expect(uploadFolderOf(WORK, 'upload_abcdef/x')).toBeUndefined();
    expect(uploadFolderOf(WORK, WORK)).toBeUndefined();
    expect(uploadFolderOf(WORK, `${WORK}/pkgs/app.tar.gz`)).toBeUndefined();
  });
});

describe('judgeUploadFolders', () => {
  const F = 'upload_aaaaaa';

  it.each(PHASES.map((p) => [p, isTerminal(p)] as const))(
    'an upgrade in phase %s: folder removed = %s (on either pass)',
    (phase, terminal) => {
      for (const pass of ['startup', 'running'] as const) {
        const v = judge({
          pass,
          folders: [{ name: F, modifiedMs: fresh }],
          upgrades: [use('upg-1', phase, F)],
        }).get(F)!;
        expect(v.remove).toBe(terminal);
        expect(v.upgrade).toBe('upg-1');
        expect(v.reason).toBe(
          terminal ? `upgrade upg-1 ended (${phase})` : `in use by upgrade upg-1 (phase ${phase})`,
        );
      }
    },
  );

  it('keeps a folder whose upgrade has no status yet', () => {
    const v = judge({
      pass: 'startup',
      folders: [{ name: F, modifiedMs: fresh }],
      upgrades: [use('upg-1', undefined, F)],
    }).get(F)!;
    expect(v).toMatchObject({
      remove: false,
      reason: 'in use by upgrade upg-1 (phase not started)',
    });
  });

  it('keeps a folder one ended upgrade and one running upgrade share', () => {
    const v = judge({
      folders: [{ name: F, modifiedMs: fresh }],
      upgrades: [use('upg-old', 'FAILED', F), use('upg-retry', 'PREPARE', F)],
    }).get(F)!;
    expect(v).toMatchObject({ remove: false, upgrade: 'upg-retry' });
  });

  it('counts a signature path alone as a use', () => {
    const v = judge({
      folders: [{ name: F, modifiedMs: fresh }],
      upgrades: [
        {
          name: 'upg-1',
          phase: 'BACKUP',
          paths: ['/srv/app.tar.gz', `${WORK}/${F}/package.sig`],
        },
      ],
    }).get(F)!;
    expect(v.remove).toBe(false);
  });

  it('at start: removes folders no upgrade uses (cut-short uploads, gone upgrades)', () => {
    const v = judge({
      pass: 'startup',
      folders: [{ name: F, modifiedMs: fresh }],
      upgrades: [use('upg-1', 'PREPARE', 'upload_bbbbbb')],
    }).get(F)!;
    expect(v).toMatchObject({ remove: true, reason: expect.stringMatching(/^no upgrade uses it/) });
  });

  it('while running: keeps an unclaimed folder (an upload in progress) until it is a day old', () => {
    const young = judge({ folders: [{ name: F, modifiedMs: NOW - ABANDONED_AFTER_MS + 1 }] }).get(
      F,
    )!;
    expect(young).toMatchObject({
      remove: false,
      reason: 'not claimed by an upgrade yet (an upload in progress)',
    });
    const old = judge({ folders: [{ name: F, modifiedMs: NOW - ABANDONED_AFTER_MS }] }).get(F)!;
    expect(old).toMatchObject({ remove: true, reason: expect.stringMatching(/abandoned upload/) });
  });

  it('while running: removes a folder once its UpgradeRequest is gone', () => {
    const v = judge({
      folders: [{ name: F, modifiedMs: fresh }],
      claimed: new Map([[F, 'upg-1']]),
    }).get(F)!;
    expect(v).toMatchObject({
      remove: true,
      upgrade: 'upg-1',
      reason: 'the UpgradeRequest upg-1 is gone',
    });
  });

  it('never touches other entries of the work folder, nor an upgrade named like an old upload', () => {
    const verdicts = judge({
      pass: 'startup',
      folders: [
        { name: 'upg-20261129-0a1b2c3d', modifiedMs: 0 },
        { name: 'stage-app-2.0.0-abcdef', modifiedMs: 0 },
        { name: 'upload-abc123', modifiedMs: 0 },
        { name: 'upload-old123', modifiedMs: 0 },
      ],
      // a manifest UpgradeRequest may be called upload-abc123: its work folder has that name
      upgrades: [use('upload-abc123', 'COMPLETE', 'upload_cccccc')],
    });
    expect([...verdicts.keys()].sort()).toEqual(['upload-abc123', 'upload-old123']);
    expect(verdicts.get('upload-abc123')).toMatchObject({
      remove: false,
      reason: 'the work folder of upgrade upload-abc123, not an upload',
    });
    expect(verdicts.get('upload-old123')?.remove).toBe(true);
  });

  it('judges several folders at once, each on its own', () => {
    const verdicts = judge({
      pass: 'startup',
      folders: ['upload_aaaaaa', 'upload_bbbbbb', 'upload_cccccc', 'upload_dddddd'].map((name) => ({
        name,
        modifiedMs: fresh,
      })),
      upgrades: [
        use('upg-a', 'COMPLETE', 'upload_aaaaaa'),
        use('upg-b', 'VIP_SWITCH', 'upload_bbbbbb'),
        use('upg-c', 'ROLLBACK', 'upload_cccccc'),
      ],
    });
    expect(Object.fromEntries([...verdicts].map(([k, v]) => [k, v.remove]))).toEqual({
      upload_aaaaaa: true,
      upload_bbbbbb: false,
      upload_cccccc: false,
      upload_dddddd: true,
    });
  });
});

describe('replicas sharing the folder (shared view given)', () => {
  const live = new Map([
    ['op-a', 'a2'],
    ['op-b', 'b1'],
  ]);
  const owned = (name: string, replica: string, boot: string, modifiedMs = fresh) => ({
    name,
    modifiedMs,
    owner: { replica, boot },
  });
  for (const pass of ['startup', 'running'] as const) {
    it(`${pass}: unclaimed folders go or stay by their owner, never by the pass alone`, () => {
      const v = judge({
        pass,
        shared: { live },
        folders: [
          owned('upload_liveA1', 'op-a', 'a2'),
          owned('upload_prevA1', 'op-a', 'a1'),
          owned('upload_goneC1', 'op-c', 'c1'),
          owned('upload_oldB01', 'op-b', 'b1', NOW - ABANDONED_AFTER_MS),
          { name: 'upload_noOwn1', modifiedMs: NOW - 60_000 },
          { name: 'upload_noOwn2', modifiedMs: NOW - 11 * 60_000 },
          owned('upload_used01', 'op-c', 'c1'),
        ],
        upgrades: [use('upg-1', 'PREPARE', 'upload_used01')],
      });
      const removed = [...v.values()].filter((x) => x.remove).map((x) => x.folder);
      expect(removed.sort()).toEqual([
        'upload_goneC1',
        'upload_noOwn2',
        'upload_oldB01',
        'upload_prevA1',
      ]);
      expect(v.get('upload_liveA1')?.reason).toMatch(/in progress on op-a/);
      expect(v.get('upload_prevA1')?.reason).toMatch(/op-a has restarted/);
      expect(v.get('upload_goneC1')?.reason).toMatch(/op-c is gone/);
      // An upgrade's folder stays whoever made it.
      expect(v.get('upload_used01')?.remove).toBe(false);
    });
  }

  it('without the shared view the start-up sweep is as before: every unclaimed folder goes', () => {
    const v = judge({ pass: 'startup', folders: [owned('upload_liveA1', 'op-a', 'a2')] });
    expect(v.get('upload_liveA1')?.remove).toBe(true);
  });
});
