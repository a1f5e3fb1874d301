
use strict;
use warnings;
use RT -init;
my ($name, $group_name) = @ARGV;
my $user = RT::User->new( RT->SystemUser );
$user->Load($name);
unless ( $user->id ) {
    my ( $ok, $msg ) = $user->Create(
        Name => $name, RealName => 'Rollout bridge', Privileged => 1,
        EmailAddress => "$name\@localhost",
    );
    die "cannot create user $name: $msg\n" unless $ok;
}
my $group = RT::Group->new( RT->SystemUser );
$group->LoadUserDefinedGroup($group_name);
die "group $group_name missing\n" unless $group->id;
unless ( $group->HasMember( $user->PrincipalId ) ) {
    my ( $ok, $msg ) = $group->AddMember( $user->PrincipalId );
    die "cannot add $name to $group_name: $msg\n" unless $ok;
}
my $token = RT::AuthToken->new( RT->SystemUser );
my ( $ok, $msg, $auth ) = $token->Create( Owner => $user->id, Description => 'sandbox' );
die "cannot create token: $msg\n" unless $ok;
print $auth;
