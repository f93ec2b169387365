import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../operator/src/config.ts';
import { ConfigError } from '../../operator/src/errors.ts';

describe('parseConfig', () => {
  it('has defaults for everything, and takes the namespace and identity from the pod', () => {
    const config = parseConfig([], { POD_NAMESPACE: 'ops', POD_NAME: 'operator-0' });
    expect(config).toMatchObject({
      dev: false,
      namespace: 'ops',
      podName: 'operator-0',
      listenHost: '0.0.0.0',
      httpsPort: 9443,
      healthPort: 8080,
      maxStatusWritesPerSecond: 10,
      sharedVolumeSize: '256Mi',
      sidecarResources: { requests: { cpu: '250m', memory: '128Mi' }, limits: { memory: '512Mi' } },
    });
  });

  it('is a new Lease candidate in every process, even in the same pod', () => {
    const first = parseConfig([], { POD_NAME: 'operator-0' }).identity;
    const restarted = parseConfig([], { POD_NAME: 'operator-0' }).identity;
    expect(first).toMatch(/^operator-0_[0-9a-f]{8}$/);
    expect(restarted).not.toBe(first);
    expect(parseConfig(['--identity', 'fixed'], { POD_NAME: 'operator-0' }).identity).toBe('fixed');
  });

  it('listens on loopback in development mode', () => {
    expect(parseConfig(['--dev'], {}).listenHost).toBe('127.0.0.1');
  });

  it('builds the sidecar resources from the flags given', () => {
    const config = parseConfig(
      ['--sidecar-cpu-limit', '2', '--sidecar-memory-request', '', '--shared-volume-size', '64Mi'],
      {},
    );
    expect(config.sidecarResources).toEqual({ requests: { cpu: '250m' }, limits: { cpu: '2', memory: '512Mi' } });
    expect(config.sharedVolumeSize).toBe('64Mi');
  });

  it('reads the labels of its peer replicas, and looks for none without them', () => {
    const config = parseConfig(
      ['--peer-selector', 'app.kubernetes.io/name=cloudphone-operator,app.kubernetes.io/instance=cp'],
      {},
    );
    expect(config.peerLabels).toEqual({
      'app.kubernetes.io/name': 'cloudphone-operator',
      'app.kubernetes.io/instance': 'cp',
    });
    expect(parseConfig([], {}).peerLabels).toEqual({});
  });

  it.each([
    [['--peer-selector', 'app in (a,b)'], '--peer-selector must be key=value pairs separated by commas'],
    [['--peer-selector', 'app=-bad-'], '--peer-selector must be key=value pairs separated by commas'],
    [['--https-port', '70000'], '--https-port must be an integer from 0 to 65535, got 70000'],
    [['--sidecar-memory-limit', 'lots'], '--sidecar-memory-limit must be a Kubernetes quantity'],
    [['--sidecar-image-pull-policy', 'Sometimes'], '--sidecar-image-pull-policy must be Always, IfNotPresent or Never'],
    [['--no-such-flag'], "Unknown option '--no-such-flag'"],
  ])('refuses %j with a ConfigError saying what is wrong', (argv, message) => {
    expect(() => parseConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseConfig(argv, {})).toThrow(message);
  });
});
