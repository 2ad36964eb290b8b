"""NAAM reproduction: client machines and one server host with a BlueField-2 SmartNIC.

Instructions:
The experiment has a server node named `host` (whose node type must carry a BlueField-2) and
`client_count` client nodes named `client0`, `client1`, ..., all on one experiment LAN
(10.10.1.0/24; the host is 10.10.1.1, client i is 10.10.1.(i + 2)). Measured traffic uses that
LAN, never the control network.

Once the experiment is ready, on any node run `geni-get manifest > manifest.xml`, copy it home,
and import it with `naam cloudlab-import manifest.xml --identity-file ... --known-hosts ...
--bluefield-arm-port 2222 > hosts.toml` (naam-ssh's `cloudlab` module),
which reads node names, SSH logins and LAN addresses from it. The node names above are what its
default role rule expects: `host*` -> host, `client*` -> client.

The BlueField-2's Arm cores run their own OS and are reached through the host (rshim,
`tmfifo_net0`, the Arm at 192.168.100.2). They are not a node of this profile, but they are an SSH
target of their own: the host's startup script forwards TCP port `bf2_arm_ssh_port` (default
2222) to the Arm's sshd, and the importer (`ImportOptions::bluefield_arm`) adds a node
`host-bf2` (NIC role, aarch64, 8 cores, LAN address 10.10.1.101) reached at that port. The Arm
side must carry that LAN address itself (ARTIFACT.md, real-hardware guide). Written here, not run
on CloudLab by the harness's authors.
"""

# This is a geni-lib script (CloudLab runs it to build the request RSpec); geni-lib supplies the
# `geni` package. Written for the NAAM reproduction harness; no other profile's code is reused.
import geni.portal as portal
import geni.rspec.pg as pg

# Node types. BlueField-2 SmartNICs were found on CloudLab Clemson's `r7525` nodes (public
# profiles that use them name that type). Hardware changes over time: check the BF-2 node type
# against the cluster's current hardware page (https://www.cloudlab.us/hardware.php and the
# CloudLab manual's hardware chapter) before instantiating, and keep clients on the same cluster
# as the host so they share the experiment LAN.
BF2_HOST_TYPE_DEFAULT = "r7525"
CLIENT_TYPE_DEFAULT = "r7525"
IMAGE_DEFAULT = "urn:publicid:IDN+emulab.net+image+emulab-ops//UBUNTU22-64-STD"
CLIENT_COUNT_MAX = 16
LAN_PREFIX = "10.10.1."
LAN_NETMASK = "255.255.255.0"
# The Arm side of a BlueField-2 as its host sees it over rshim (the BlueField default).
BF2_ARM_RSHIM_ADDRESS = "192.168.100.2"
BF2_ARM_SSH_PORT_DEFAULT = 2222

pc = portal.Context()
pc.defineParameter(
    "client_count", "Number of client machines", portal.ParameterType.INTEGER, 2,
    longDescription="Load-generating clients, named client0 ... client{N-1}.")
pc.defineParameter(
    "host_type", "Node type of the server host (must have a BlueField-2)",
    portal.ParameterType.NODETYPE, BF2_HOST_TYPE_DEFAULT,
    longDescription="Check the cluster's hardware page for the node type that carries a BlueField-2.")
pc.defineParameter(
    "client_type", "Node type of the clients", portal.ParameterType.NODETYPE, CLIENT_TYPE_DEFAULT)
pc.defineParameter(
    "bf2_arm_ssh_port", "Host port forwarded to the BlueField-2 Arm side's sshd",
    portal.ParameterType.INTEGER, BF2_ARM_SSH_PORT_DEFAULT, advanced=True,
    longDescription="The importer's BlueFieldArm.ssh_port must match.")
pc.defineParameter(
    "image", "Disk image for every node", portal.ParameterType.IMAGE, IMAGE_DEFAULT, advanced=True)
params = pc.bindParameters()

if params.client_count < 1 or params.client_count > CLIENT_COUNT_MAX:
    pc.reportError(portal.ParameterError(
        "client_count must be between 1 and %d" % CLIENT_COUNT_MAX, ["client_count"]))
pc.verifyParameters()

request = pc.makeRequestRSpec()
lan = request.LAN("lan")


def add_node(name, hardware_type, lan_host_octet):
    """One bare-metal node on the experiment LAN."""
    node = request.RawPC(name)
    node.hardware_type = hardware_type
    node.disk_image = params.image
    interface = node.addInterface("if0")
    interface.addAddress(pg.IPv4Address(LAN_PREFIX + str(lan_host_octet), LAN_NETMASK))
    lan.addInterface(interface)
    return node


host = add_node("host", params.host_type, 1)
# Forward a host port to the Arm side's sshd, so the Arm is its own SSH target (the rshim network
# must be up: tmfifo_net0 at 192.168.100.1, as on BlueField's default host setup).
host.addService(pg.Execute(shell="sh", command=(
    "sudo sh -c 'command -v socat >/dev/null || apt-get install -y socat; "
    "nohup socat TCP-LISTEN:%d,fork,reuseaddr TCP:%s:22 >/var/log/naam-bf2-forward.log 2>&1 &'"
    % (params.bf2_arm_ssh_port, BF2_ARM_RSHIM_ADDRESS))))
for index in range(params.client_count):
    add_node("client%d" % index, params.client_type, index + 2)

pc.printRequestRSpec(request)
