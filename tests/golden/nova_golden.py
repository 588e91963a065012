#!/usr/bin/python3
"""Derive hyperlet's golden block-device expectations from Nova's own code.

For every create request tests/data/golden/<case>.json (and the optional
<case>.config.json with max_local_block_devices / max_disk_devices_to_attach)
this script runs the request through Nova 26's code, as far as it concerns
block devices:

  API     nova.block_device.BlockDeviceDict.from_api (servers.py's
          _process_bdms_for_create), or the legacy path with no BDMs
  compute nova.compute.api.API._check_and_transform_bdm (image root, flavor
          ephemeral and swap BDMs) and API._validate_bdm, on a bare API
          object whose Cinder/Glance calls are stubbed
  manager the root device name (ComputeManager._default_block_device_names /
          LibvirtDriver.default_root_device_name)
  driver  nova.virt.driver.get_block_device_info (virt.block_device
          convert_*) and nova.virt.libvirt.blockinfo.get_disk_info for
          virt_type kvm on x86_64, with the names and buses it picks saved
          back into the BDMs as DriverBlockDevice.save() does

and writes tests/data/golden/<case>.expected.json: the BDMs, the
block_device_info and the disk mapping. Cases in HYPERLET_ERRORS expect a
failure whose errno and field are hyperlet's own (Nova has no such notion);
the Nova outcome is recorded beside it for the reader.

Needs Debian 12's python3-nova (only to regenerate):
    /usr/bin/python3 tests/golden/nova_golden.py [case ...]
"""

import copy
import glob
import json
import os
import sys

import nova.conf
from nova import block_device
from nova import context as nova_context
from nova import exception
from nova import objects

objects.register_all()

from nova.compute import api as compute_api  # noqa: E402
from nova.objects import block_device as block_device_obj  # noqa: E402
from nova.virt import block_device as driver_block_device  # noqa: E402
from nova.virt import driver  # noqa: E402
from nova.virt.libvirt import blockinfo  # noqa: E402

CONF = nova.conf.CONF
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), 'data', 'golden')
VIRT_TYPE = 'kvm'

# Failure cases: hyperlet's own errno and field (the request field at
# fault, as hyperlet names it). Everything not listed here takes its
# expectation from Nova.
HYPERLET_ERRORS = {
    # nova/block_device.py BlockDeviceDict / from_api
    'fail_no_source_type': ('EINVAL', 'block_device_mapping_v2[0].source_type'),
    'fail_blank_with_uuid': ('EINVAL', 'block_device_mapping_v2[1].uuid'),
    'fail_volume_without_uuid': ('EINVAL', 'block_device_mapping_v2[0].uuid'),
    'fail_image_local_not_root': ('EINVAL', 'block_device_mapping_v2[1].source_type'),
    'fail_device_name_space': ('EINVAL', 'block_device_mapping_v2[1].device_name'),
    'fail_volume_size_negative': ('EINVAL', 'block_device_mapping_v2[1].volume_size'),
    'fail_volume_size_not_integer': ('EINVAL', 'block_device_mapping_v2[1].volume_size'),
    'fail_volume_type_local': ('EINVAL', 'block_device_mapping_v2[1].volume_type'),
    'fail_volume_type_on_volume': ('EINVAL', 'block_device_mapping_v2[1].volume_type'),
    'fail_unknown_bdm_field': ('EINVAL', 'block_device_mapping_v2[1].no_such_field'),
    'fail_device_name_empty': ('EINVAL', 'block_device_mapping_v2[1].device_name'),
    # nova/compute/api.py _check_and_transform_bdm
    'fail_volume_named_like_root': ('EINVAL', 'block_device_mapping_v2[1].device_name'),
    # nova/compute/api.py _validate_bdm
    'fail_boot_sequence_gap': ('EINVAL', 'block_device_mapping_v2[2].boot_index'),
    'fail_no_boot_device': ('EINVAL', 'imageRef'),
    'fail_image_volume_no_size': ('EINVAL', 'block_device_mapping_v2[0].volume_size'),
    'fail_blank_volume_no_size': ('EINVAL', 'block_device_mapping_v2[1].volume_size'),
    'fail_unknown_disk_bus': ('EINVAL', 'block_device_mapping_v2[1].disk_bus'),
    'fail_ephemeral_too_big': ('EINVAL', 'block_device_mapping_v2[2].volume_size'),
    'fail_two_swaps': ('EINVAL', 'block_device_mapping_v2[2]'),
    'fail_swap_too_big': ('EINVAL', 'block_device_mapping_v2[1].volume_size'),
    'fail_too_many_local': ('EINVAL', 'block_device_mapping_v2'),
    # nova/virt/libvirt/blockinfo.py find_disk_dev_for_disk_bus
    'fail_ide_too_many': ('EINVAL', 'block_device_mapping_v2'),
    'fail_max_disk_devices': ('EINVAL', 'block_device_mapping_v2'),
    # hyperlet only: Nova accepts these (see README, deliberate differences)
    'fail_volume_without_connection_info': (
        'EINVAL', 'block_device_mapping_v2[1].connection_info'),
    'fail_local_root_other_image': ('EINVAL', 'block_device_mapping_v2[0].uuid'),
    'fail_duplicate_serial': ('EEXIST', 'block_device_mapping_v2[2].uuid'),
    'fail_image_disk_bus_unknown': ('EINVAL', 'image_meta.properties.hw_disk_bus'),
    'fail_disk_format_unknown': ('EINVAL', 'image_meta.disk_format'),
}


def generated_uuid(index):
    """The uuid the golden runner gives a BDM the request did not name
    (index into the prepared BDM list), so serials are deterministic."""
    return '%08x-0000-4000-8000-000000000000' % (index + 1)


class FakeInstance(object):
    """The few Instance attributes blockinfo and the compute API read."""

    def __init__(self, body, flavor, image_meta):
        self.uuid = body.get('uuid', '11111111-2222-4333-8444-555555555555')
        self.image_ref = body.get('imageRef', '')
        self.root_device_name = None
        self.ephemeral_gb = flavor.ephemeral_gb
        self.config_drive = bool(body.get('config_drive', False))
        self.launched_at = None
        self.kernel_id = None
        self.flavor = flavor
        self.image_meta = image_meta

    def get_flavor(self):
        return self.flavor

    def get(self, key, default=None):
        return getattr(self, key, default)

    def __getitem__(self, key):
        return getattr(self, key)


class StubVolumeAPI(object):
    def get_snapshot(self, context, snapshot_id):
        return {'id': snapshot_id, 'size': None}


def make_api():
    api = compute_api.API.__new__(compute_api.API)
    api.volume_api = StubVolumeAPI()
    api._check_attach_and_reserve_volume = lambda *a, **k: None
    api._get_image = lambda context, image_id: {'id': image_id}
    return api


def nova_bdms(body, flavor, image_meta, ctxt):
    """servers.py + compute/api.py: the BDM objects Nova would store."""
    api = make_api()
    v2 = copy.deepcopy(body.get('block_device_mapping_v2') or [])
    image_ref = body.get('imageRef')
    given_uuids = []
    # hyperlet names the volume a scheduler made from an image, snapshot
    # or blank; Nova makes it later, so it is not there at validation time
    made_volume_ids = []
    if v2:
        dicts = []
        for raw in v2:
            given_uuids.append(raw.pop('bdm_uuid', None))
            made_volume_ids.append(raw.pop('volume_id', None)
                                   if raw.get('source_type') != 'volume'
                                   else None)
            if isinstance(raw.get('connection_info'), dict):
                raw['connection_info'] = json.dumps(raw['connection_info'])
            dicts.append(block_device.BlockDeviceDict.from_api(
                raw, image_ref is not None))
        legacy = False
    else:
        dicts = []
        legacy = True
    base_options = {'image_ref': image_ref or '', 'root_device_name': None}
    bdms = api._check_and_transform_bdm(
        ctxt, base_options, flavor, {'properties': {}}, 1, 1, dicts, legacy)
    # Nova's API appends the flavor's BDMs after the request's; the
    # legacy path puts the image root first (there are no others then).
    volumes = {}
    for bdm in bdms:
        if bdm.volume_id is not None and bdm.source_type == 'volume':
            volumes[bdm.volume_id] = {'id': bdm.volume_id,
                                      'size': bdm.volume_size,
                                      'multiattach': False}
    instance = FakeInstance(body, flavor, image_meta)
    api._validate_bdm(ctxt, instance, flavor, bdms, {}, volumes)
    for i, bdm in enumerate(bdms):
        given = given_uuids[i] if i < len(given_uuids) else None
        bdm.uuid = given or generated_uuid(i)
        if i < len(made_volume_ids) and made_volume_ids[i]:
            bdm.volume_id = made_volume_ids[i]
    return instance, bdms


def save_driver_bdms(bdi):
    """DriverBlockDevice.save() without a database: copy the fields the
    mapping wrote back onto the BDM objects."""
    devs = list(bdi['image']) + list(bdi['ephemerals'])
    if bdi['swap']:
        devs.append(bdi['swap'])
    devs += list(bdi['block_device_mapping'])
    for dbd in devs:
        for attr, key in dbd._update_on_save.items():
            key = key or attr
            if key in dbd and dbd[key] is not None:
                setattr(dbd._bdm_obj, attr, dbd[key])


def serial_of(bdm):
    """hyperlet's serial rule (design.md "Serials")."""
    if bdm.device_type == 'lun':
        return None
    ident = bdm.volume_id if bdm.destination_type == 'volume' else bdm.uuid
    return ident if bdm.disk_bus == 'scsi' else ident[:20]


def by_id_of(bdm, serial):
    if serial is None:
        return None
    cd = bdm.device_type == 'cdrom'
    if bdm.disk_bus == 'scsi':
        model = 'QEMU_CD-ROM' if cd else 'QEMU_HARDDISK'
        return '/dev/disk/by-id/scsi-0QEMU_%s_%s' % (model, serial)
    if bdm.disk_bus in ('sata', 'ide'):
        model = 'QEMU_DVD-ROM' if cd else 'QEMU_HARDDISK'
        return '/dev/disk/by-id/ata-%s_%s' % (model, serial)
    return '/dev/disk/by-id/virtio-%s' % serial


def boot_index_of(value):
    """hyperlet shows "not bootable" (Nova's None or -1) as null."""
    return value if value is not None and value >= 0 else None


def hyperlet_defaults(bdms, flavor):
    """The defaults bdm_instance_prepare fills in where Nova leaves a
    value unset (README, deliberate differences): local disks are always
    deleted with the instance, device_type is disk when not given, and an
    ephemeral or swap without volume_size takes the flavor's size."""
    for bdm in bdms:
        if bdm.destination_type == 'local':
            bdm.delete_on_termination = True
        if bdm.device_type is None:
            bdm.device_type = 'disk'
        if block_device.new_format_is_swap(bdm) and not bdm.volume_size:
            bdm.volume_size = flavor.swap
        elif (block_device.new_format_is_ephemeral(bdm) and
              not bdm.volume_size):
            bdm.volume_size = flavor.ephemeral_gb


def bdm_json(bdm):
    serial = serial_of(bdm)
    return {
        'bdm_uuid': bdm.uuid,
        'boot_index': boot_index_of(bdm.boot_index),
        'source_type': bdm.source_type,
        'destination_type': bdm.destination_type,
        'device_type': bdm.device_type,
        'disk_bus': bdm.disk_bus,
        'device_name': bdm.device_name,
        'volume_size': bdm.volume_size,
        'guest_format': bdm.guest_format,
        'delete_on_termination': bdm.delete_on_termination,
        'image_id': bdm.image_id,
        'volume_id': bdm.volume_id,
        'snapshot_id': bdm.snapshot_id,
        'tag': bdm.tag,
        'connection_info': (json.loads(bdm.connection_info)
                            if bdm.connection_info else None),
        'serial': serial,
        'by_id': by_id_of(bdm, serial),
    }


def driver_bdm_json(dbd, kind):
    obj = dbd._bdm_obj
    serial = serial_of(obj)
    out = {'bdm_uuid': obj.uuid, 'kind': kind, 'serial': serial,
           'by_id': by_id_of(obj, serial)}
    if kind == 'swap':
        out.update({'device_name': dbd['device_name'],
                    'disk_bus': dbd['disk_bus'],
                    'swap_size': dbd['swap_size']})
    elif kind == 'local_root':
        # 'size' left out: Nova's is volume_size or 0, hyperlet's the
        # flavor's root_gb (README)
        out.update({'device_name': dbd['device_name'],
                    'disk_bus': dbd['disk_bus'],
                    'device_type': dbd['device_type'],
                    'boot_index': dbd['boot_index'],
                    'image_id': obj.image_id})
    elif kind == 'ephemeral':
        out.update({'device_name': dbd['device_name'],
                    'disk_bus': dbd['disk_bus'],
                    'device_type': dbd['device_type'],
                    'guest_format': dbd['guest_format'],
                    'size': dbd['size']})
    else:
        out.update({'mount_device': dbd['mount_device'],
                    'disk_bus': dbd['disk_bus'],
                    'device_type': dbd['device_type'],
                    'guest_format': dbd['guest_format'],
                    'boot_index': boot_index_of(dbd['boot_index']),
                    'delete_on_termination': dbd['delete_on_termination'],
                    'connection_info': dbd['connection_info'],
                    'volume_id': obj.volume_id})
    return out


VOLUME_KINDS = {
    driver_block_device.DriverVolumeBlockDevice: 'volume',
    driver_block_device.DriverVolSnapshotBlockDevice: 'snapshot',
    driver_block_device.DriverVolImageBlockDevice: 'image',
    driver_block_device.DriverVolBlankBlockDevice: 'blank',
}


def bdi_json(bdi, root_device_name):
    image = bdi['image']
    return {
        'root_device_name': root_device_name,
        'local_root': driver_bdm_json(image[0], 'local_root')
        if image else None,
        'ephemerals': [driver_bdm_json(e, 'ephemeral')
                       for e in bdi['ephemerals']],
        'swap': driver_bdm_json(bdi['swap'], 'swap') if bdi['swap'] else None,
        'block_device_mapping': [driver_bdm_json(v, VOLUME_KINDS[type(v)])
                                 for v in bdi['block_device_mapping']],
    }


def nova_attach(instance, image_meta, bdms, body, index):
    """LibvirtDriver.get_device_name_for_instance for a volume attached
    with the attach body (hyperlet's: volume_id, connection_info,
    device_name?, disk_bus?); the BDM is then part of the instance."""
    raw = {'source_type': 'volume', 'destination_type': 'volume',
           'uuid': body['volume_id'], 'boot_index': None,
           'connection_info': json.dumps(body['connection_info'])}
    for key in ('device_name', 'disk_bus', 'delete_on_termination', 'tag'):
        if key in body:
            raw[key] = body[key]
    bdm = block_device_obj.block_device_make_list_from_dicts(
        nova_context.get_admin_context(),
        [block_device.BlockDeviceDict.from_api(raw, False)])[0]
    bdm.uuid = generated_uuid(index)
    bdi = driver.get_block_device_info(instance, bdms)
    info = blockinfo.get_disk_info(VIRT_TYPE, instance, image_meta, bdi)
    bdm.device_name = None  # "Ignoring supplied device name"
    disk_info = blockinfo.get_info_from_bdm(
        instance, VIRT_TYPE, image_meta, bdm, mapping=info['mapping'])
    bdm.device_name = block_device.prepend_dev(disk_info['dev'])
    bdm.disk_bus = disk_info['bus']
    bdms.objects.append(bdm)
    return {'device_name': bdm.device_name, 'disk_bus': bdm.disk_bus}


def run_nova(body, config, attaches=None):
    CONF.set_override('max_local_block_devices',
                      config.get('max_local_block_devices', 3))
    CONF.set_override('max_disk_devices_to_attach',
                      config.get('max_disk_devices_to_attach', -1),
                      group='compute')
    ctxt = nova_context.get_admin_context()
    f = body.get('flavor', {})
    flavor = objects.Flavor(vcpus=f.get('vcpus', 1),
                            memory_mb=f.get('memory_mb', 512),
                            root_gb=f.get('root_gb', 0),
                            ephemeral_gb=f.get('ephemeral_gb', 0),
                            swap=f.get('swap', 0), extra_specs={})
    meta = body.get('image_meta') or {}
    props = meta.get('properties') or {}
    meta_dict = {'properties': dict(props)}
    if meta.get('disk_format'):
        # blockinfo.get_root_info reads it (only without a root BDM)
        meta_dict['disk_format'] = meta['disk_format']
    image_meta = objects.ImageMeta.from_dict(meta_dict)
    instance, bdms = nova_bdms(body, flavor, image_meta, ctxt)
    hyperlet_defaults(bdms, flavor)

    # ComputeManager._default_block_device_names: the root device name
    root_bdm = block_device.get_root_bdm(bdms)
    if root_bdm.device_name:
        instance.root_device_name = root_bdm.device_name
    else:
        disk_bus = blockinfo.get_disk_bus_for_device_type(
            instance, VIRT_TYPE, image_meta, 'disk')
        cdrom_bus = blockinfo.get_disk_bus_for_device_type(
            instance, VIRT_TYPE, image_meta, 'cdrom')
        root_info = blockinfo.get_root_info(instance, VIRT_TYPE, image_meta,
                                            root_bdm, disk_bus, cdrom_bus)
        instance.root_device_name = block_device.prepend_dev(root_info['dev'])
        root_bdm.device_name = instance.root_device_name

    # LibvirtDriver.default_device_names_for_instance: every name a BDM
    # gives is dropped ("Libvirt can't honour user-supplied dev names");
    # the root's survives as instance.root_device_name
    for bdm in bdms:
        bdm.device_name = None
    bdi = driver.get_block_device_info(instance, bdms)
    info = blockinfo.get_disk_info(VIRT_TYPE, instance, image_meta, bdi)
    save_driver_bdms(bdi)
    result = {
        'disk_bus': info['disk_bus'],
        'cdrom_bus': info['cdrom_bus'],
        'bdms': [bdm_json(b) for b in bdms],
        'block_device_info': bdi_json(bdi, instance.root_device_name),
        'mapping': info['mapping'],
    }
    # after the create's result: each attached volume joins the instance
    attached = [nova_attach(instance, image_meta, bdms, a, len(bdms))
                for a in attaches or []]
    if attached:
        result['attach'] = attached
    return result


def derive(case):
    with open(os.path.join(DATA, case + '.json')) as f:
        body = json.load(f)
    config = {}
    cpath = os.path.join(DATA, case + '.config.json')
    if os.path.exists(cpath):
        with open(cpath) as f:
            config = json.load(f)
    attaches = None
    apath = os.path.join(DATA, case + '.attach.json')
    if os.path.exists(apath):
        with open(apath) as f:
            attaches = json.load(f)
    try:
        result = run_nova(body, config, attaches)
        nova_outcome = None
    except exception.NovaException as e:
        result = None
        nova_outcome = '%s: %s' % (type(e).__name__, e)
    except Exception as e:
        if case not in HYPERLET_ERRORS:
            raise
        # Nova's own bug: the API would answer 500
        result = None
        nova_outcome = 'crash (HTTP 500) %s: %s' % (type(e).__name__, e)
    if case in HYPERLET_ERRORS:
        errno, field = HYPERLET_ERRORS[case]
        return {
            'expected_by': 'hyperlet',
            'error': {'errno': errno, 'field': field},
            'nova': nova_outcome or 'accepted',
        }
    if result is None:
        sys.exit('%s: Nova refused (%s) but the case is not in '
                 'HYPERLET_ERRORS' % (case, nova_outcome))
    result['expected_by'] = 'nova'
    return result


def main(argv):
    cases = argv[1:] or sorted(
        os.path.basename(p)[:-len('.json')]
        for p in glob.glob(os.path.join(DATA, '*.json'))
        if not p.endswith('.expected.json') and
        not p.endswith('.config.json') and
        not p.endswith('.attach.json'))
    for case in cases:
        out = derive(case)
        with open(os.path.join(DATA, case + '.expected.json'), 'w') as f:
            json.dump(out, f, indent=2, sort_keys=True)
            f.write('\n')
        print('%-36s %s' % (case, out.get('nova') or 'ok'))


if __name__ == '__main__':
    main(sys.argv)
