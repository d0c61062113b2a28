/**
 * The three.js side of the t-SNE scatter: one THREE.Points over a BufferGeometry (positions and
 * per-point colours), orbit controls (2-D: pan and zoom; 3-D: also rotate), picking by raycast with
 * a threshold of a few pixels, rendering only when something changed.
 */
import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import { canvasToPng } from './download.ts';
import { labelColours } from './palette.ts';

export interface ScatterData {
  /** [n, dims] map coordinates. */
  positions: Float32Array;
  dims: 2 | 3;
  /** Label of each point (its colour). */
  labels: readonly string[];
}

/** Pick radius in CSS pixels. */
const PICK_PIXELS = 6;

export class ScatterScene {
  private readonly renderer: THREE.WebGLRenderer;
  private readonly scene = new THREE.Scene();
  private camera: THREE.OrthographicCamera | THREE.PerspectiveCamera = new THREE.OrthographicCamera();
  private controls: OrbitControls | null = null;
  private points: THREE.Points | null = null;
  private readonly raycaster = new THREE.Raycaster();
  private extent = 1;
  private frame = 0;

  constructor(private readonly canvas: HTMLCanvasElement) {
    // preserveDrawingBuffer keeps the last frame readable for PNG export.
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(globalThis.devicePixelRatio ?? 1);
    this.renderer.setClearColor(0xffffff, 1);
  }

  /** Replace the points; returns the colour key. */
  setData(data: ScatterData, pointSize: number): { label: string; colour: string }[] {
    const n = data.labels.length;
    if (data.positions.length !== n * data.dims) throw new Error(`scatter: ${data.positions.length / data.dims} positions for ${n} labels`);
    const key = labelColours(data.labels);
    const colourOf = new Map(key.map((k) => [k.label, new THREE.Color(k.colour)]));
    const xyz = new Float32Array(n * 3);
    const rgb = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < data.dims; c++) xyz[i * 3 + c] = data.positions[i * data.dims + c];
      const colour = colourOf.get(data.labels[i])!;
      rgb.set([colour.r, colour.g, colour.b], i * 3);
    }
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute('position', new THREE.BufferAttribute(xyz, 3));
    geometry.setAttribute('color', new THREE.BufferAttribute(rgb, 3));
    geometry.computeBoundingSphere();
    const sphere = geometry.boundingSphere!;
    this.extent = Math.max(sphere.radius, 1e-6);

    if (this.points) {
      this.scene.remove(this.points);
      this.points.geometry.dispose();
      (this.points.material as THREE.Material).dispose();
    }
    this.points = new THREE.Points(geometry, new THREE.PointsMaterial({ size: pointSize, vertexColors: true, sizeAttenuation: false }));
    this.scene.add(this.points);
    this.setCamera(data.dims, sphere.center);
    this.requestRender();
    return key;
  }

  private setCamera(dims: 2 | 3, centre: THREE.Vector3): void {
    this.controls?.dispose();
    const { width, height } = this.size();
    const aspect = width / height;
    const r = this.extent * 1.05;
    if (dims === 2) {
      this.camera = new THREE.OrthographicCamera(-r * Math.max(aspect, 1), r * Math.max(aspect, 1), r / Math.min(aspect, 1), -r / Math.min(aspect, 1), -10 * r, 10 * r);
      this.camera.position.set(centre.x, centre.y, r);
    } else {
      this.camera = new THREE.PerspectiveCamera(50, aspect, r / 100, r * 100);
      this.camera.position.set(centre.x, centre.y, centre.z + r * 2.6);
    }
    this.camera.lookAt(centre);
    const controls = new OrbitControls(this.camera, this.canvas);
    controls.target.copy(centre);
    controls.zoomToCursor = true;
    controls.enableRotate = dims === 3;
    if (dims === 2) controls.mouseButtons = { LEFT: THREE.MOUSE.PAN, MIDDLE: THREE.MOUSE.DOLLY, RIGHT: THREE.MOUSE.PAN };
    controls.screenSpacePanning = true;
    controls.addEventListener('change', () => this.requestRender());
    controls.update();
    this.controls = controls;
  }

  private size(): { width: number; height: number } {
    return { width: Math.max(1, this.canvas.clientWidth), height: Math.max(1, this.canvas.clientHeight) };
  }

  resize(): void {
    const { width, height } = this.size();
    this.renderer.setSize(width, height, false);
    if (this.camera instanceof THREE.PerspectiveCamera) this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.requestRender();
  }

  requestRender(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  render(): void {
    this.renderer.render(this.scene, this.camera);
  }

  /** Index of the point under client coordinates (x, y), or null. */
  pick(clientX: number, clientY: number): number | null {
    if (!this.points) return null;
    const rect = this.canvas.getBoundingClientRect();
    const ndc = new THREE.Vector2(((clientX - rect.left) / rect.width) * 2 - 1, -((clientY - rect.top) / rect.height) * 2 + 1);
    this.raycaster.setFromCamera(ndc, this.camera);
    // World units per CSS pixel at the target: the orthographic view's width over the canvas width,
    // or the perspective frustum's height at the target distance over the canvas height.
    const camera = this.camera;
    const perPixel =
      camera instanceof THREE.OrthographicCamera
        ? (camera.right - camera.left) / camera.zoom / rect.width
        : (2 * Math.tan((camera.fov * Math.PI) / 360) * camera.position.distanceTo(this.controls!.target)) / rect.height;
    this.raycaster.params.Points = { threshold: PICK_PIXELS * perPixel };
    const hits = this.raycaster.intersectObject(this.points);
    if (!hits.length) return null;
    // Nearest to the ray, then nearest to the camera.
    hits.sort((a, b) => (a.distanceToRay ?? 0) - (b.distanceToRay ?? 0) || a.distance - b.distance);
    return hits[0].index ?? null;
  }

  /** Client coordinates of point i (for tests and keyboard focus). */
  project(i: number): { x: number; y: number } {
    const attribute = this.points!.geometry.getAttribute('position');
    const v = new THREE.Vector3(attribute.getX(i), attribute.getY(i), attribute.getZ(i)).project(this.camera);
    const rect = this.canvas.getBoundingClientRect();
    return { x: rect.left + ((v.x + 1) / 2) * rect.width, y: rect.top + ((1 - v.y) / 2) * rect.height };
  }

  toPng(): Promise<Blob> {
    this.render();
    return canvasToPng(this.canvas);
  }

  dispose(): void {
    cancelAnimationFrame(this.frame);
    this.controls?.dispose();
    if (this.points) {
      this.points.geometry.dispose();
      (this.points.material as THREE.Material).dispose();
    }
    this.renderer.dispose();
  }
}
