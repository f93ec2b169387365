// Turns the page's pointer, keyboard, wheel and paste events into the phone's input events. Coordinates are
// normalized to the picture itself, not the element: the video is letterboxed (object-fit: contain), and a
// touch on the black bars is not on the phone. Each browser pointer gets a finger index 0..9 for the whole
// gesture (multi-touch where the browser has it).
//
// Typing goes to an invisible textarea, so that input methods work: a letter or digit goes as the phone's key
// for the character the viewer's layout made (not the key's place); a key that makes no character (Enter,
// arrows) as that key; any other character as Text from its keydown; a dead key's result as the character the
// next key makes; what an input method composed, once, when the composition ends; what an on-screen keyboard
// inserts without a usable keydown, from the input event. Each path prevents the next, so nothing is sent twice.

import { TouchAction } from '../../generated/ts/fbs/input_generated.ts';
import { androidKeycode, androidKeycodeForCharacter, androidMetaState } from './android-keys.ts';
import type { PlayerMessages } from './channel-messages.ts';
import { isRotateShortcut, phoneKeyForShortcut } from './phone-keys.ts';

const MAX_FINGERS = 10;
// The longest Text the sidecar and the phone take whole, in UTF-8 bytes.
const TEXT_MAX_BYTES = 255;

/**
 * Pasted text as the phone takes it: line ends as \n, other control characters (which the sidecar refuses)
 * left out, in pieces of at most 255 UTF-8 bytes that never cut a character, nor where the browser can tell,
 * a grapheme (an emoji with its modifiers, a letter with its accents).
 */
export function textChunks(text: string): string[] {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is removed
  const clean = text.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
  const encoder = new TextEncoder();
  const graphemes =
    typeof Intl.Segmenter === 'function'
      ? Array.from(new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(clean), (s) => s.segment)
      : Array.from(clean);
  const chunks: string[] = [];
  let chunk = '';
  let bytes = 0;
  for (const grapheme of graphemes) {
    // A grapheme longer than a whole chunk (a pile of combining marks) goes by code points.
    for (const piece of encoder.encode(grapheme).length > TEXT_MAX_BYTES ? Array.from(grapheme) : [grapheme]) {
      const size = encoder.encode(piece).length;
      if (bytes + size > TEXT_MAX_BYTES) {
        chunks.push(chunk);
        chunk = '';
        bytes = 0;
      }
      chunk += piece;
      bytes += size;
    }
  }
  if (chunk) chunks.push(chunk);
  return chunks;
}

export class InputCapture {
  readonly #video: HTMLVideoElement;
  readonly #keyboard: HTMLTextAreaElement;
  readonly #messages: PlayerMessages;
  readonly #send: (bytes: Uint8Array) => void;
  readonly #rotate: () => void;
  readonly #fingers = new Map<number, number>();

  constructor(
    video: HTMLVideoElement,
    keyboard: HTMLTextAreaElement,
    messages: PlayerMessages,
    send: (bytes: Uint8Array) => void,
    rotate: () => void,
  ) {
    this.#video = video;
    this.#keyboard = keyboard;
    this.#messages = messages;
    this.#send = send;
    this.#rotate = rotate;
    keyboard.addEventListener('compositionend', (e) => {
      this.#typed(e.data);
    });
    keyboard.addEventListener('input', (e) => {
      const input = e as InputEvent;
      // Mid-composition the input method still changes its mind; compositionend brings the result.
      if (input.isComposing) return;
      if (input.inputType === 'insertText' && input.data) this.#typed(input.data);
      else keyboard.value = '';
    });
    this.focusKeyboard();
    video.addEventListener('pointerdown', (e) => {
      this.#pointer(e, TouchAction.Down);
    });
    video.addEventListener('pointermove', (e) => {
      this.#pointer(e, TouchAction.Move);
    });
    video.addEventListener('pointerup', (e) => {
      this.#pointer(e, TouchAction.Up);
    });
    video.addEventListener('pointercancel', (e) => {
      this.#pointer(e, TouchAction.Cancel);
    });
    video.addEventListener('contextmenu', (e) => {
      e.preventDefault();
    });
    video.addEventListener(
      'wheel',
      (e) => {
        this.#wheel(e);
      },
      { passive: false },
    );
    window.addEventListener('keydown', (e) => {
      this.#key(e, true);
    });
    window.addEventListener('keyup', (e) => {
      this.#key(e, false);
    });
    window.addEventListener('paste', (e) => {
      if (ownKeys(e)) return;
      for (const chunk of textChunks(e.clipboardData?.getData('text/plain') ?? ''))
        this.#send(this.#messages.text(chunk));
      e.preventDefault();
    });
  }

  /** Typing goes to the phone from here on (the page keeps its keyboard focus in the hidden textarea). */
  focusKeyboard(): void {
    this.#keyboard.focus({ preventScroll: true });
  }

  /** Text an input method or an on-screen keyboard produced; the textarea is emptied for the next. */
  #typed(text: string): void {
    this.#keyboard.value = '';
    for (const chunk of textChunks(text)) this.#send(this.#messages.text(chunk));
  }

  /** Where on the phone (0..1) a point in the page is, or undefined outside the picture. */
  phonePoint(clientX: number, clientY: number): { x: number; y: number } | undefined {
    const rect = this.#video.getBoundingClientRect();
    const { videoWidth, videoHeight } = this.#video;
    if (videoWidth === 0 || videoHeight === 0) return undefined;
    const scale = Math.min(rect.width / videoWidth, rect.height / videoHeight);
    const left = rect.left + (rect.width - videoWidth * scale) / 2;
    const top = rect.top + (rect.height - videoHeight * scale) / 2;
    const x = (clientX - left) / (videoWidth * scale);
    const y = (clientY - top) / (videoHeight * scale);
    if (x < 0 || x > 1 || y < 0 || y > 1) return undefined;
    return { x, y };
  }

  #pointer(e: PointerEvent, action: TouchAction): void {
    e.preventDefault();
    let finger = this.#fingers.get(e.pointerId);
    if (action === TouchAction.Down) {
      if (finger !== undefined || this.#fingers.size >= MAX_FINGERS) return;
      const used = new Set(this.#fingers.values());
      finger = [...Array(MAX_FINGERS).keys()].find((i) => !used.has(i)) ?? 0;
      const point = this.phonePoint(e.clientX, e.clientY);
      if (!point) return;
      this.#fingers.set(e.pointerId, finger);
      this.#video.setPointerCapture(e.pointerId);
      this.focusKeyboard();
      this.#send(this.#messages.touch(action, finger, point.x, point.y, this.#pressure(e)));
      return;
    }
    if (finger === undefined) return;
    const rect = this.#video.getBoundingClientRect();
    // A finger that slides off the picture stays on its edge, as on a real screen.
    const point = this.phonePoint(
      Math.min(Math.max(e.clientX, rect.left), rect.right),
      Math.min(Math.max(e.clientY, rect.top), rect.bottom),
    ) ?? { x: 0, y: 0 };
    const clamped = { x: Math.min(1, Math.max(0, point.x)), y: Math.min(1, Math.max(0, point.y)) };
    if (action !== TouchAction.Move) this.#fingers.delete(e.pointerId);
    this.#send(
      this.#messages.touch(action, finger, clamped.x, clamped.y, action === TouchAction.Move ? this.#pressure(e) : 0),
    );
  }

  #pressure(e: PointerEvent): number {
    // A mouse reports 0.5 while a button is held; the phone expects 1 for a plain press.
    return e.pointerType === 'mouse' ? 1 : Math.min(1, Math.max(0, e.pressure || 1));
  }

  #wheel(e: WheelEvent): void {
    const point = this.phonePoint(e.clientX, e.clientY);
    if (!point) return;
    e.preventDefault();
    // One notch is about 100 pixels in most browsers; lines and pages count as one notch each.
    const notches = (delta: number): number =>
      Math.max(-16, Math.min(16, e.deltaMode === WheelEvent.DOM_DELTA_PIXEL ? delta / 100 : Math.sign(delta)));
    this.#send(this.#messages.scroll(point.x, point.y, notches(e.deltaX), notches(e.deltaY)));
  }

  #key(e: KeyboardEvent, down: boolean): void {
    // During a composition ('Process': the input method has the key) the result comes with compositionend. A
    // dead key waits for the next one: the character they make comes as that key's, or as a composition.
    if (e.isComposing || e.key === 'Process' || e.key === 'Dead' || ownKeys(e)) return;
    if (isRotateShortcut(e)) {
      e.preventDefault();
      if (down && !e.repeat) this.#rotate();
      return;
    }
    const phoneKey = phoneKeyForShortcut(e);
    if (phoneKey) {
      e.preventDefault();
      this.#send(this.#messages.key(down, phoneKey.keycode, e.repeat ? 1 : 0, 0));
      return;
    }
    const repeat = e.repeat ? 1 : 0;
    const meta = androidMetaState(e);
    // Ctrl, Alt or Meta with a key is a command (Ctrl+C), not a character; AltGr types characters.
    const command = (e.ctrlKey || e.metaKey || e.altKey) && !e.getModifierState('AltGraph');
    const character = Array.from(e.key).length === 1 ? e.key : ''; // 'Enter' and the like are names
    if (character && character !== ' ' && !command) {
      e.preventDefault();
      const keycode = androidKeycodeForCharacter(character);
      // A letter's case travels as Shift alone (CapsLock left out, or the phone would flip it back); a digit
      // is that digit however the layout reached it (Shift+& on AZERTY). Anything else goes as the text.
      if (keycode !== undefined) {
        const upper = character !== character.toLowerCase();
        this.#send(this.#messages.key(down, keycode, repeat, withShift(meta, upper)));
      } else if (down) {
        this.#send(this.#messages.text(character));
      }
      return;
    }
    // Commands take the letter the layout shows (Ctrl+Z on AZERTY is the key at KeyW) and, on layouts without
    // Latin letters, the key's place; keys that make no character (Enter, arrows) go by their place.
    const keycode = (command ? androidKeycodeForCharacter(character) : undefined) ?? androidKeycode(e.code);
    if (keycode !== undefined) {
      e.preventDefault();
      this.#send(this.#messages.key(down, keycode, repeat, meta));
    }
  }
}

/** Events in a part of the page that takes its own keys (marked data-own-keys: the clipboard's text). */
function ownKeys(e: Event): boolean {
  return e.target instanceof Element && e.target.closest('[data-own-keys]') !== null;
}

const SHIFT_BITS = 0x1 | 0x40; // META_SHIFT_ON | META_SHIFT_LEFT_ON
const CAPS_LOCK_BIT = 0x100000; // META_CAPS_LOCK_ON

function withShift(meta: number, shift: boolean): number {
  const rest = meta & ~(SHIFT_BITS | CAPS_LOCK_BIT);
  return shift ? rest | SHIFT_BITS : rest;
}
