// The phone's navigation and hardware keys, which a laptop keyboard or a touch screen does not have: as buttons
// in the page (pressed for as long as the finger or mouse stays down, so a long press on Power works) and as
// shortcuts with Alt, the letters scrcpy's users know (Alt+B back, Alt+H home, Alt+S app switch, Alt+P power,
// Alt+Up and Alt+Down volume). Each goes to the phone as the Android key code, down and then up.

export interface PhoneKey {
  name: string;
  /** android.view.KeyEvent KEYCODE_* */
  keycode: number;
  /** KeyboardEvent.code of the shortcut, pressed with Alt alone. */
  shortcut: string;
  /** The button's icon: SVG shapes in a 24x24 box, drawn in the text colour (no font has them all). */
  icon: string;
}

const SPEAKER = '<path d="M3 9h4l5-4v14l-5-4H3z" fill="currentColor"/>';
const STROKE = 'fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"';

export const PHONE_KEYS: readonly PhoneKey[] = [
  { name: 'Back', keycode: 4, shortcut: 'KeyB', icon: '<path d="M16 5L7 12l9 7z" fill="currentColor"/>' },
  { name: 'Home', keycode: 3, shortcut: 'KeyH', icon: `<circle cx="12" cy="12" r="6" ${STROKE}/>` },
  {
    name: 'Recent apps',
    keycode: 187,
    shortcut: 'KeyS',
    icon: `<rect x="6" y="6" width="12" height="12" rx="1" ${STROKE}/>`,
  },
  {
    name: 'Power',
    keycode: 26,
    shortcut: 'KeyP',
    icon: `<path d="M12 3v8" ${STROKE}/><path d="M7 6.5a7 7 0 1 0 10 0" ${STROKE}/>`,
  },
  { name: 'Volume up', keycode: 24, shortcut: 'ArrowUp', icon: `${SPEAKER}<path d="M15 12h6M18 9v6" ${STROKE}/>` },
  { name: 'Volume down', keycode: 25, shortcut: 'ArrowDown', icon: `${SPEAKER}<path d="M15 12h6" ${STROKE}/>` },
];

/** What a button in the bar shows: a name, an Alt shortcut and an icon. */
type ButtonFace = Pick<PhoneKey, 'name' | 'shortcut' | 'icon'>;

/** Turning the phone is no key: a request the phone may honour (it then sends pictures of the turned size). */
export const ROTATE: ButtonFace = {
  name: 'Rotate',
  shortcut: 'KeyR',
  icon: `<path d="M19 12a7 7 0 1 1-2.05-4.95" ${STROKE}/><path d="M19 3v5h-5" ${STROKE}/>`,
};

/** How a shortcut reads on the page: Alt+B, Alt+Up. */
export function shortcutText(key: ButtonFace): string {
  return `Alt+${key.shortcut.replace(/^Key/, '').replace(/^Arrow/, '')}`;
}

/** Alt with no other modifier: how every shortcut of the bar is pressed. */
function altAlone(event: KeyboardEvent): boolean {
  return event.altKey && !event.ctrlKey && !event.metaKey && !event.shiftKey;
}

/** Whether the key event is Alt+R, the shortcut that turns the phone. */
export function isRotateShortcut(event: KeyboardEvent): boolean {
  return altAlone(event) && event.code === ROTATE.shortcut;
}

/** The phone key an Alt shortcut stands for; undefined for any other key or with other modifiers held. */
export function phoneKeyForShortcut(event: KeyboardEvent): PhoneKey | undefined {
  return altAlone(event) ? PHONE_KEYS.find((key) => key.shortcut === event.code) : undefined;
}

/**
 * Fills the bar with one button per phone key. press(keycode, down) is called with down on pointerdown and
 * with up when that pointer lifts, is cancelled or leaves the button: a key is never left held.
 */
export function phoneKeyButtons(bar: HTMLElement, press: (keycode: number, down: boolean) => void): void {
  for (const key of PHONE_KEYS) {
    const button = iconButton(key);
    button.dataset.keycode = String(key.keycode);
    let held: number | undefined;
    const release = (): void => {
      if (held === undefined) return;
      held = undefined;
      press(key.keycode, false);
    };
    button.addEventListener('pointerdown', (e) => {
      e.preventDefault(); // keeps the keyboard focus where typing goes
      if (held !== undefined) return;
      held = e.pointerId;
      button.setPointerCapture(e.pointerId);
      press(key.keycode, true);
    });
    button.addEventListener('pointerup', release);
    button.addEventListener('pointercancel', release);
    button.addEventListener('lostpointercapture', release);
    button.addEventListener('contextmenu', (e) => {
      e.preventDefault(); // a long press on a touch screen must not open a menu
    });
    bar.append(button);
  }
}

/** Adds the Rotate button to the bar: each click asks the phone for the next quarter turn. */
export function rotateButton(bar: HTMLElement, rotate: () => void): void {
  const button = iconButton(ROTATE);
  button.id = 'rotate';
  button.addEventListener('pointerdown', (e) => {
    e.preventDefault(); // keeps the keyboard focus where typing goes
  });
  button.addEventListener('click', rotate);
  bar.append(button);
}

function iconButton(control: ButtonFace): HTMLButtonElement {
  const button = document.createElement('button');
  button.type = 'button';
  // The icons are this file's own constants, never text from elsewhere.
  button.innerHTML = `<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">${control.icon}</svg>`;
  button.title = `${control.name} (${shortcutText(control)})`;
  button.setAttribute('aria-label', control.name);
  return button;
}
