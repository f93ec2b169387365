// Browser KeyboardEvent.code -> Android KEYCODE_* (android.view.KeyEvent), for keys a phone understands as
// keys whatever the layout (Enter, arrows, F1...). Letters and digits go by the character the viewer's layout
// made (androidKeycodeForCharacter); other characters (accents, symbols, IME input) go as Text.

const KEYCODES: Record<string, number> = {
  Escape: 111,
  Backspace: 67,
  Delete: 112,
  Enter: 66,
  NumpadEnter: 66,
  Tab: 61,
  Space: 62,
  ArrowUp: 19,
  ArrowDown: 20,
  ArrowLeft: 21,
  ArrowRight: 22,
  Home: 122,
  End: 123,
  PageUp: 92,
  PageDown: 93,
  Insert: 124,
  ShiftLeft: 59,
  ShiftRight: 60,
  ControlLeft: 113,
  ControlRight: 114,
  AltLeft: 57,
  AltRight: 58,
  MetaLeft: 117,
  MetaRight: 118,
  CapsLock: 115,
  Comma: 55,
  Period: 56,
  Minus: 69,
  Equal: 70,
  BracketLeft: 71,
  BracketRight: 72,
  Backslash: 73,
  Semicolon: 74,
  Quote: 75,
  Slash: 76,
  Backquote: 68,
};
for (let i = 0; i < 26; i++) KEYCODES[`Key${String.fromCharCode(65 + i)}`] = 29 + i;
for (let i = 0; i < 10; i++) KEYCODES[`Digit${String(i)}`] = 7 + i;
for (let i = 1; i <= 12; i++) KEYCODES[`F${String(i)}`] = 130 + i;

export function androidKeycode(code: string): number | undefined {
  return KEYCODES[code];
}

/**
 * The Android key for a character a key produced, by the character and not by where the key sits: on an
 * AZERTY keyboard the key at KeyQ types 'a' and must reach the phone as KEYCODE_A. Letters and digits only;
 * the phone's keyboard map (US) would turn other characters' key codes into different characters.
 */
export function androidKeycodeForCharacter(key: string): number | undefined {
  if (/^[a-zA-Z]$/.test(key)) return 29 + key.toLowerCase().charCodeAt(0) - 97;
  if (/^[0-9]$/.test(key)) return 7 + key.charCodeAt(0) - 48;
  return undefined;
}

/** Android META_* bits for the modifiers held during a key event. */
export function androidMetaState(event: KeyboardEvent): number {
  let meta = 0;
  if (event.shiftKey) meta |= 0x1 | 0x40;
  if (event.altKey) meta |= 0x2 | 0x10;
  if (event.ctrlKey) meta |= 0x1000 | 0x2000;
  if (event.metaKey) meta |= 0x10000 | 0x20000;
  if (event.getModifierState('CapsLock')) meta |= 0x100000;
  return meta;
}
